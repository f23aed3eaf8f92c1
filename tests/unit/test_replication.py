"""Several room registries in one process, joined by the in-memory fan-out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pycrdt import Doc, Map

from crdt.live.registry import LiveRoom, Rooms, RoomSettings
from crdt.memory import ManualClock, MemoryFanout, MemoryHub
from crdt.ports import Disconnect
from crdt.protocol import SyncUpdate, decode_message, encode_update
from persistence.memory import MemoryDocumentStore
from tests.support.yclient import eventually

SETTINGS = RoomSettings(
    group_commit_ms=1, awareness_coalesce_ms=1, unload_grace_ms=10, confirm_timeout_ms=200
)


@dataclass(eq=False)
class FakePeer:
    user_id: str = "u"
    frames: list[bytes] = field(default_factory=list)
    closed: Disconnect | None = None
    doc: Doc = field(default_factory=Doc)

    def send(self, frame: bytes) -> bool:
        self.frames.append(frame)
        message = decode_message(frame)
        if isinstance(message, SyncUpdate):
            self.doc.apply_update(message.update)
        return True

    def close(self, reason: Disconnect) -> None:
        self.closed = reason


def _edit(key: str) -> bytes:
    doc: Doc = Doc()
    doc.get("assets", type=Map)[key] = key
    return doc.get_update()


def _keys(doc: Doc) -> set[str]:
    return set(doc.get("assets", type=Map).keys())


async def _instances(n: int, store: MemoryDocumentStore) -> tuple[MemoryHub, list[Rooms]]:
    hub = MemoryHub()
    return hub, [Rooms(store, SETTINGS, fanout=MemoryFanout(hub, f"i{k}")) for k in range(n)]


async def test_clients_on_different_instances_converge_with_one_record_each() -> None:
    store = MemoryDocumentStore()
    clock = ManualClock()
    hub = MemoryHub()
    a, b = (Rooms(store, SETTINGS, fanout=MemoryFanout(hub, f"i{k}"), clock=clock) for k in (0, 1))
    pa, pb = FakePeer(), FakePeer()
    la = await a.join("d", pa, can_edit=True)
    lb = await b.join("d", pb, can_edit=True)
    for i in range(20):
        la.receive(pa, encode_update(_edit(f"a{i}")))
        lb.receive(pb, encode_update(_edit(f"b{i}")))
    expected = {f"a{i}" for i in range(20)} | {f"b{i}" for i in range(20)}
    await eventually(lambda: _keys(la.room.doc) == expected == _keys(lb.room.doc))
    await eventually(lambda: _keys(pa.doc) >= {f"b{i}" for i in range(20)})
    await la.flush()
    await lb.flush()
    # Past the confirmation timeout: every update was confirmed, so nothing is stored twice.
    clock.advance(SETTINGS.confirm_timeout_ms / 1000 + 1)
    for live in (la, lb):
        assert live.replicator is not None
        live.replicator.sweep()
        await live.flush()
    assert len(store.updates["d"]) == 40


async def test_updates_of_a_dead_instance_are_stored_by_the_survivor() -> None:
    store = MemoryDocumentStore()
    hub, (a, b) = await _instances(2, store)
    pa, pb = FakePeer(), FakePeer()
    la = await a.join("d", pa, can_edit=True)
    lb = await b.join("d", pb, can_edit=True)
    assert la.replicator is not None
    # Instance a accepts an update and dies before storing it (its writer never runs).
    la._commits._writer.cancel()  # type: ignore[union-attr]
    la.receive(pa, encode_update(_edit("orphan")))
    await eventually(lambda: "orphan" in _keys(lb.room.doc))
    hub.gone("i0")
    await eventually(lambda: any(b"orphan" in u for u in store.updates.get("d", [])))


async def test_a_gap_reloads_from_the_store() -> None:
    store = MemoryDocumentStore()
    hub, (a, b) = await _instances(2, store)
    pa, pb = FakePeer(), FakePeer()
    la = await a.join("d", pa, can_edit=True)
    lb = await b.join("d", pb, can_edit=True)
    la.receive(pa, encode_update(_edit("first")))
    await eventually(lambda: _keys(lb.room.doc) == {"first"})
    hub.drop_next = 1  # the second update is lost on the way to b
    la.receive(pa, encode_update(_edit("lost")))
    await la.flush()
    la.receive(pa, encode_update(_edit("next")))
    # b notices the missing number and catches up from the store; its client gets it too.
    await eventually(lambda: _keys(lb.room.doc) == {"first", "lost", "next"})
    await eventually(lambda: _keys(pb.doc) >= {"lost"})


async def test_presence_crosses_instances_and_goes_with_its_instance() -> None:
    store = MemoryDocumentStore()
    hub, (a, b) = await _instances(2, store)
    pa, pb = FakePeer(), FakePeer()
    la = await a.join("d", pa, can_edit=True)
    lb: LiveRoom = await b.join("d", pb, can_edit=True)
    from crdt.protocol import AwarenessEntry, encode_awareness_message

    la.receive(pa, encode_awareness_message([AwarenessEntry(77, 1, '{"n":1}')]))
    await eventually(lambda: 77 in lb.room._awareness)
    hub.gone("i0")
    await eventually(lambda: 77 not in lb.room._awareness)


async def test_role_changes_reach_other_instances() -> None:
    store = MemoryDocumentStore()
    _, (a, b) = await _instances(2, store)
    pb = FakePeer(user_id="eve")
    await a.join("d", FakePeer(), can_edit=True)
    await b.join("d", pb, can_edit=True)
    a.revoke("d", "eve")
    await eventually(lambda: pb.closed is Disconnect.REVOKED)


class UnreachableStore(MemoryDocumentStore):
    async def append(self, doc_id: str, updates: object) -> None:
        raise ConnectionError("database unreachable")


async def test_shutdown_does_not_wait_forever_for_an_unreachable_store() -> None:
    rooms = Rooms(UnreachableStore(), SETTINGS)
    peer = FakePeer()
    live = await rooms.join("d", peer, can_edit=True)
    live.receive(peer, encode_update(_edit("k")))
    await asyncio.wait_for(rooms.close(flush_timeout_s=0.2), 5)
    assert peer.closed is Disconnect.SHUTDOWN

"""A live room's member list: read with the document, kept current by access changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

from crdt.live.registry import LiveRoom, Rooms, RoomSettings
from crdt.memory import ManualClock, MemoryFanout, MemoryHub
from crdt.ports import FirstJoin
from persistence.memory import MemoryDocumentStore
from tests.support.yclient import eventually
from tests.unit.test_replication import SETTINGS, FakePeer

DOC = str(uuid.uuid4())


async def turns(count: int = 20) -> None:
    """Let the tasks started so far run until they wait (no I/O here, so a bounded number
    of event-loop turns is enough, and the same every run)."""
    for _ in range(count):
        await asyncio.sleep(0)


class FakeMembership:
    """Members per document; ``gate`` (when set) holds every read until it is opened."""

    def __init__(self, members: dict[str, bool] | None) -> None:
        self.stored = members
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.gates: list[asyncio.Event] = []  # one per read, taken in order, before ``gate``

    async def members(self, doc_id: str) -> dict[str, bool] | None:
        self.reads += 1
        snapshot = None if self.stored is None else dict(self.stored)
        gate = self.gates.pop(0) if self.gates else self.gate
        if gate is not None:
            await gate.wait()
        return snapshot


def _live(rooms: Rooms) -> LiveRoom:
    live = rooms.get(DOC)
    assert live is not None
    return live


class CountingStore(MemoryDocumentStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, doc_id: str) -> Sequence[bytes]:
        self.loads += 1
        return await super().load(doc_id)


def _rooms(
    membership: FakeMembership,
    settings: RoomSettings = SETTINGS,
    store: MemoryDocumentStore | None = None,
) -> Rooms:
    rooms = Rooms(store or MemoryDocumentStore(), settings)
    rooms.membership = membership
    return rooms


async def test_a_cold_room_opens_for_its_first_joiner_member_list_first() -> None:
    membership = FakeMembership({"alice": True, "vera": False})
    membership.gate = asyncio.Event()
    store = CountingStore()
    rooms = _rooms(membership, RoomSettings(unload_grace_ms=50), store)
    first = asyncio.create_task(rooms.member(DOC, "alice"))
    await turns()
    others = [asyncio.create_task(rooms.member(DOC, user)) for user in ("vera", "mallory")]
    await turns()
    assert membership.reads == 1 and store.loads == 0  # the document waits for the list
    assert not any(task.done() for task in (first, *others))
    membership.gate.set()
    assert await first == (True, True)
    assert [await task for task in others] == [(True, False), (False, False)]
    assert membership.reads == 1 and store.loads == 1  # one read each, for every joiner
    # Opened for a join that never came (refused, or the client left): unloaded all the same.
    await eventually(lambda: rooms.get(DOC) is None)


async def test_a_non_member_opening_a_cold_room_reads_no_document() -> None:
    membership = FakeMembership({"alice": True})
    membership.gate = asyncio.Event()
    store = CountingStore()
    rooms = _rooms(membership, store=store)
    mallory = asyncio.create_task(rooms.member(DOC, "mallory"))
    await turns()
    alice_lookup = asyncio.create_task(rooms.member(DOC, "alice"))
    # Admitted by the database meanwhile: joins once the room is opened for her instead.
    alice_join = asyncio.create_task(rooms.join(DOC, FakePeer("alice"), can_edit=True))
    await turns()
    membership.gate.set()
    assert await mallory is None  # the database tells which refusal
    assert await alice_lookup is None  # that list is not kept: ask the database
    live = await alice_join
    assert store.loads == 1  # alice's join only
    assert rooms.get(DOC) is live and len(live.peers) == 1
    assert membership.reads == 2


async def test_an_unknown_project_or_an_unkept_list_opens_no_room() -> None:
    # No members at all (no such project), or too many to keep: the database answers.
    for members in ({}, None):
        store = CountingStore()
        rooms = _rooms(FakeMembership(members), store=store)
        assert await rooms.member(DOC, "alice") is None
        assert rooms.get(DOC) is None and store.loads == 0


async def test_members_are_known_while_the_room_is_live() -> None:
    membership = FakeMembership({"alice": True, "vera": False})
    rooms = _rooms(membership)
    live = await rooms.join(DOC, FakePeer("alice"), can_edit=True)
    assert await rooms.member(DOC, "alice") == (True, True)
    assert await rooms.member(DOC, "vera") == (True, False)
    assert await rooms.member(DOC, "mallory") == (False, False)

    rooms.set_can_edit(DOC, "mallory", True)  # added
    rooms.set_can_edit(DOC, "vera", True)  # promoted
    rooms.revoke(DOC, "alice")  # removed
    assert await rooms.member(DOC, "mallory") == (True, True)
    assert await rooms.member(DOC, "vera") == (True, True)
    assert await rooms.member(DOC, "alice") == (False, False)
    await live.close()
    assert await rooms.member(DOC, "vera") is None


async def test_changes_during_the_read_are_applied_on_top() -> None:
    membership = FakeMembership({"alice": True, "bob": True})
    membership.gate = asyncio.Event()
    rooms = _rooms(membership)
    joined = asyncio.create_task(rooms.join(DOC, FakePeer("alice"), can_edit=True))
    await turns()
    assert membership.reads == 1  # the read took its snapshot; now changes arrive
    rooms.revoke(DOC, "bob")
    rooms.set_can_edit(DOC, "carol", False)
    membership.gate.set()
    await joined
    assert await rooms.member(DOC, "bob") == (False, False)
    assert await rooms.member(DOC, "carol") == (True, False)


async def test_a_lookup_during_the_load_waits_for_the_list() -> None:
    membership = FakeMembership({"alice": True})
    membership.gate = asyncio.Event()
    rooms = _rooms(membership)
    joined = asyncio.create_task(rooms.join(DOC, FakePeer("alice"), can_edit=True))
    await turns()
    lookup = asyncio.create_task(rooms.member(DOC, "alice"))
    await turns()
    assert not lookup.done()  # waiting for the load, not asking the database
    membership.gate.set()
    assert await lookup == (True, True)
    await joined
    assert membership.reads == 1


async def test_a_read_overtaken_by_a_newer_one_is_dropped() -> None:
    membership = FakeMembership({"alice": True, "bob": True})
    rooms = _rooms(membership)
    await rooms.join(DOC, FakePeer("alice"), can_edit=True)
    live = _live(rooms)
    first, second = asyncio.Event(), asyncio.Event()
    membership.gates = [first, second]
    older = asyncio.create_task(live.members.read())  # snapshot with bob
    await turns()
    membership.stored = {"alice": True}  # bob removed, and the change never heard
    newer = asyncio.create_task(live.members.read())
    await turns()
    second.set()
    await newer
    first.set()
    await older  # finishes last, with the stale snapshot: dropped
    assert live.member("bob") == (False, False)
    assert live.member("alice") == (True, True)


async def test_an_old_list_is_read_again() -> None:
    membership = FakeMembership({"alice": True})
    settings = RoomSettings(group_commit_ms=1, unload_grace_ms=10, members_ttl_ms=1000)
    clock = ManualClock()
    rooms = Rooms(MemoryDocumentStore(), settings, membership=membership, clock=clock)
    await rooms.join(DOC, FakePeer("alice"), can_edit=True)
    membership.stored = {"alice": True, "dave": True}  # changed behind the room's back
    assert await rooms.member(DOC, "dave") == (False, False)
    clock.advance(1.5)
    membership.gate = asyncio.Event()
    # Past its time: a new read starts, and the list answers while it runs.
    assert await rooms.member(DOC, "dave") == (False, False)
    clock.advance(0.75)
    assert await rooms.member(DOC, "dave") is None  # twice its time and the read still not back
    membership.gate.set()
    await turns()
    assert await rooms.member(DOC, "dave") == (True, True)
    assert membership.reads == 2


async def test_too_many_members_or_a_failed_read_means_unknown() -> None:
    rooms = _rooms(FakeMembership(None))
    await rooms.join(DOC, FakePeer("alice"), can_edit=True)
    assert await rooms.member(DOC, "alice") is None

    class Broken(FakeMembership):
        async def members(self, doc_id: str) -> dict[str, bool] | None:
            raise ConnectionError("database down")

    rooms = _rooms(Broken({}))
    await rooms.join(DOC, FakePeer("alice"), can_edit=True)  # the room still opens
    assert await rooms.member(DOC, "alice") is None


async def test_a_removal_on_another_instance_reaches_this_rooms_list() -> None:
    store = MemoryDocumentStore()
    hub = MemoryHub()
    a, b = (Rooms(store, SETTINGS, fanout=MemoryFanout(hub, name)) for name in ("a", "b"))
    a.membership = FakeMembership({"alice": True, "bob": True})
    b.membership = b_members = FakeMembership({"alice": True, "bob": True})
    await a.join(DOC, FakePeer("alice"), can_edit=True)
    await b.join(DOC, FakePeer("alice"), can_edit=True)
    a.revoke(DOC, "bob")
    await eventually(lambda: _live(b).member("bob") == (False, False))
    # A gap in the fan-out (changes may have been missed): the list is read again.
    b_members.stored = {"alice": True, "erin": False}
    hub.gap("test")
    await eventually(lambda: b_members.reads == 2 and _live(b).member("erin") == (True, False))


class FakeFirstJoin:
    """One read for member list and document, as ``PgFirstJoinReader``; held by ``gate``."""

    def __init__(self, membership: FakeMembership, store: MemoryDocumentStore) -> None:
        self.membership, self.store = membership, store
        self.reads = 0
        self.gate = asyncio.Event()

    async def read_first_join(self, doc_id: str, user_id: str) -> FirstJoin:
        self.reads += 1
        members = None if self.membership.stored is None else dict(self.membership.stored)
        updates = list(self.store.updates.get(doc_id, ())) if user_id in (members or {}) else None
        await self.gate.wait()
        return FirstJoin(members, updates)


async def test_a_first_join_reader_opens_a_cold_room_in_one_read() -> None:
    membership = FakeMembership({"alice": True, "bob": True})
    store = CountingStore()
    rooms = _rooms(membership, store=store)
    reader = rooms.first_join = FakeFirstJoin(membership, store)
    first = asyncio.create_task(rooms.member(DOC, "alice"))
    await turns()
    second = asyncio.create_task(rooms.member(DOC, "bob"))
    rooms.revoke(DOC, "bob")  # heard while the read runs: applied on top of it
    reader.gate.set()
    assert await first == (True, True)
    assert await second == (False, False)
    assert reader.reads == 1 and membership.reads == 0 and store.loads == 0
    assert _live(rooms).ready.done()

    reader.gate.clear()
    other = str(uuid.uuid4())
    refused = asyncio.create_task(rooms.member(other, "mallory"))
    await turns()
    reader.gate.set()
    assert await refused is None and rooms.get(other) is None


async def test_joins_of_a_cold_room_wait_for_it_without_a_task_each() -> None:
    membership = FakeMembership({"alice": True, "bob": False})
    store = CountingStore()
    rooms = _rooms(membership, store=store)
    reader = rooms.first_join = FakeFirstJoin(membership, store)
    calls: list[tuple[str, LiveRoom | None, str]] = []

    def opened(user: str) -> Callable[[LiveRoom | None], None]:
        def call(live: LiveRoom | None) -> None:
            task = asyncio.current_task()
            calls.append((user, live, task.get_name() if task is not None else ""))
            if user == "buggy":
                raise RuntimeError("a bug in one join")

        return call

    tasks_before = len(asyncio.all_tasks())
    for user in ("alice", "buggy", "bob"):
        assert rooms.wait_open(DOC, user, opened(user))
    assert len(asyncio.all_tasks()) == tasks_before + 1  # the room's load, not one per join
    await turns()
    assert calls == [] and reader.reads == 1
    reader.gate.set()
    await eventually(lambda: len(calls) == 3)
    live = _live(rooms)
    # Each called once, with the open room, within the step of the load that opened it; the
    # join that failed kept no other join (nor the room) from opening.
    assert calls == [(user, live, f"open:{DOC}") for user in ("alice", "buggy", "bob")]
    assert live.ready.done() and rooms.live_now(DOC) is live
    assert not rooms.wait_open(DOC, "alice", opened("late"))  # open: join it at once
    assert reader.reads == 1 and store.loads == 0


async def test_joins_waiting_for_a_room_that_does_not_open_get_none() -> None:
    membership = FakeMembership({"alice": True})
    store = CountingStore()
    rooms = _rooms(membership, store=store)
    reader = rooms.first_join = FakeFirstJoin(membership, store)
    reader.gate.set()
    got: list[LiveRoom | None] = []
    # Opened for a non-member: the document is not read, the room is dropped, and its joins
    # (alice included) go and ask the database.
    assert rooms.wait_open(DOC, "mallory", got.append)
    assert rooms.wait_open(DOC, "alice", got.append)
    await eventually(lambda: len(got) == 2)
    assert got == [None, None] and rooms.get(DOC) is None and store.loads == 0

    class Unreachable(FakeFirstJoin):
        async def read_first_join(self, doc_id: str, user_id: str) -> FirstJoin:
            raise OSError("database unreachable")

    rooms.first_join = Unreachable(membership, store)
    got.clear()
    assert rooms.wait_open(DOC, "alice", got.append)
    await eventually(lambda: got == [None])
    assert rooms.get(DOC) is None
    # Without a member list to open rooms with, there is nothing to wait for.
    rooms.membership = None
    assert not rooms.wait_open(DOC, "alice", got.append)

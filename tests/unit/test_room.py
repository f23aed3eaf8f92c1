"""The pure room state machine, driven with plain bytes."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map

from crdt.errors import ProtocolError
from crdt.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_awareness_message,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from crdt.room import READ_ONLY_REASON, TOO_LARGE_REASON, RemoteOrigin, Room


def _edit(key: str, value: object) -> bytes:
    doc: Doc = Doc()
    doc.get("clips", type=Map)[key] = value
    return doc.get_update()


def _awareness(frame: bytes) -> list[AwarenessEntry]:
    message = decode_message(frame)
    assert isinstance(message, AwarenessUpdate)
    return decode_awareness(message.payload, state_bytes_max=1 << 16)


def test_connect_greets_with_step1() -> None:
    room = Room()
    greeting = room.connect("a", can_edit=True)
    assert [type(decode_message(f)) for f in greeting] == [SyncStep1]


def test_the_greeting_is_encoded_once_per_version_and_follows_every_change() -> None:
    room = Room()

    def greeting(conn: str) -> bytes:
        frame = room.connect(conn, can_edit=True)[0]
        assert decode_message(frame) == SyncStep1(room.doc.get_state())
        return frame

    first = greeting("a")
    assert greeting("b") is first  # a join storm shares one frame
    room.receive("a", encode_update(_edit("c1", 1)))
    after_update = greeting("c")
    room.edit(lambda doc: doc.get("clips", type=Map).__setitem__("c2", 2))
    after_edit = greeting("d")
    assert len({first, after_update, after_edit}) == 3


def test_update_is_applied_broadcast_as_is_and_persisted() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    update = _edit("c1", 1)
    frame = encode_update(update)
    out = room.receive("a", frame)
    assert out.broadcast is frame
    assert out.update == update
    assert room.doc.get("clips", type=Map).to_py() == {"c1": 1.0}


def test_step2_is_reframed_as_update_for_others() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    update = _edit("c1", 1)
    out = room.receive("a", encode_sync_step2(update))
    assert out.broadcast is not None
    assert decode_message(out.broadcast) == SyncUpdate(update)


def test_empty_update_does_nothing() -> None:
    room = Room()
    room.connect("a", can_edit=False)
    out = room.receive("a", encode_sync_step2(b"\x00\x00"))
    assert out.broadcast is None and out.update is None and out.replies == ()


def test_step1_answered_with_missing_updates_and_full_state_cached() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    room.receive("a", encode_update(_edit("c1", 1)))
    first = room.receive("a", encode_sync_step1(b"\x00")).replies[0]
    second = room.receive("a", encode_sync_step1(b"\x00")).replies[0]
    assert first is second  # encoded once per document version
    message = decode_message(first)
    assert isinstance(message, SyncStep2)
    replica: Doc = Doc()
    replica.apply_update(message.update)
    assert replica.get("clips", type=Map).to_py() == {"c1": 1.0}
    room.receive("a", encode_update(_edit("c2", 2)))
    third = room.receive("a", encode_sync_step1(b"\x00")).replies[0]
    assert third is not first
    # A client that has everything gets an (almost) empty step 2.
    up_to_date = room.receive("a", encode_sync_step1(room.doc.get_state())).replies[0]
    assert len(up_to_date) < len(third)


def test_viewer_is_told_once_and_nothing_applies() -> None:
    room = Room()
    room.connect("v", can_edit=False)
    outs = [room.receive("v", encode_update(_edit(f"c{i}", i))) for i in range(3)]
    assert [decode_message(r) for r in outs[0].replies] == [AuthDenied(READ_ONLY_REASON)]
    assert all(o.replies == () and o.broadcast is None for o in outs[1:])
    assert room.doc.get("clips", type=Map).to_py() == {}
    room.set_can_edit("v", True)
    assert room.receive("v", encode_update(_edit("c9", 9))).update is not None


def test_bad_update_raises_and_doc_is_untouched() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    room.receive("a", encode_update(_edit("c1", 1)))
    state = room.doc.get_update()
    for bad in (b"\x01\x02\x03", _edit("c2", 2)[:-2]):
        with pytest.raises(ProtocolError):
            room.receive("a", encode_update(bad))
    assert room.doc.get_update() == state
    with pytest.raises(ProtocolError):
        room.receive("a", encode_sync_step1(b"\xff\xff"))


def test_awareness_coalesced_and_removed_on_disconnect() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    room.connect("b", can_edit=True)
    for clock in range(1, 6):
        out = room.receive(
            "a", encode_awareness_message([AwarenessEntry(7, clock, f'{{"c":{clock}}}')])
        )
        assert out.awareness_dirty
    # Stale clocks are ignored.
    assert not room.receive(
        "a", encode_awareness_message([AwarenessEntry(7, 2, "{}")])
    ).awareness_dirty
    frame, ours = room.take_awareness()
    assert frame is not None and ours is not None
    assert _awareness(frame) == [AwarenessEntry(7, 5, '{"c":5}')]
    assert room.take_awareness() == (None, None)
    # A joiner is greeted with current presence; a query returns it too.
    greeting = room.connect("c", can_edit=True)
    assert _awareness(greeting[1]) == [AwarenessEntry(7, 5, '{"c":5}')]
    reply = room.receive("c", encode_query_awareness()).replies[0]
    assert _awareness(reply) == [AwarenessEntry(7, 5, '{"c":5}')]
    assert room.disconnect("a")
    removal, relayed = room.take_awareness()
    assert removal is not None and relayed is not None
    assert _awareness(removal) == [AwarenessEntry(7, 6, "null")]
    assert len(room.connect("d", can_edit=True)) == 1


def test_a_removal_still_pending_at_disconnect_is_sent() -> None:
    # y-websocket's disconnect(): its own removal, then the close, within one interval.
    room = Room()
    room.connect("a", can_edit=True)
    room.connect("b", can_edit=True)
    room.receive("a", encode_awareness_message([AwarenessEntry(7, 1, '{"u":1}')]))
    room.take_awareness()
    room.receive("a", encode_awareness_message([AwarenessEntry(7, 2, "null")]))
    assert room.disconnect("a")
    removal, relayed = room.take_awareness()
    assert removal is not None and _awareness(removal) == [AwarenessEntry(7, 2, "null")]
    assert relayed is not None  # to the other instances too
    assert len(room.connect("c", can_edit=True)) == 1  # nobody left present


def test_reconnect_with_same_awareness_id_keeps_presence() -> None:
    room = Room()
    room.connect("old", can_edit=True)
    room.receive("old", encode_awareness_message([AwarenessEntry(7, 1, "{}")]))
    room.connect("new", can_edit=True)
    room.receive("new", encode_awareness_message([AwarenessEntry(7, 2, '{"back":true}')]))
    assert not room.disconnect("old")  # the new connection owns id 7 now
    assert room.disconnect("new")
    removal, _ = room.take_awareness()
    assert removal is not None and _awareness(removal)[0].removed


def test_server_edit_and_remote_updates() -> None:
    room = Room()
    update = room.edit(lambda doc: doc.get("project", type=Map).__setitem__("title", "T"))
    assert update is not None
    assert room.edit(lambda doc: None) is None
    frame = room.apply_remote(_edit("c1", 1))
    assert isinstance(decode_message(frame), SyncUpdate)
    assert room.doc.get("clips", type=Map).to_py() == {"c1": 1.0}


def test_server_presence_is_published_and_withdrawn() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    room.set_presence(900, '{"job":{"progress":10}}')
    room.set_presence(900, '{"job":{"progress":20}}')
    frame, ours = room.take_awareness()
    assert frame is not None and ours == encode_awareness(
        [AwarenessEntry(900, 2, '{"job":{"progress":20}}')]
    )
    assert _awareness(frame) == [AwarenessEntry(900, 2, '{"job":{"progress":20}}')]
    room.set_presence(900, None)
    frame, _ = room.take_awareness()
    assert frame is not None and _awareness(frame)[0].removed


def test_remote_presence_is_shown_not_relayed_and_dropped_with_its_instance() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    other = RemoteOrigin("instance-b")
    assert room.receive_remote_awareness(other, encode_awareness([AwarenessEntry(5, 3, "{}")]))
    frame, ours = room.take_awareness()
    assert frame is not None and _awareness(frame) == [AwarenessEntry(5, 3, "{}")]
    assert ours is None  # never sent back to other instances
    room.drop_origin(other)
    frame, ours = room.take_awareness()
    assert frame is not None and _awareness(frame) == [AwarenessEntry(5, 4, "null")]
    assert ours is None


def test_document_size_limit_refuses_growth_and_tells_once() -> None:
    first = _edit("c1", "x" * 50)
    # Room for the first edit and 60 bytes more: each later one (over 100 bytes) is refused.
    # (A fixed limit was flaky: the updates' size depends on their random client ids.)
    room = Room(doc_bytes_max=len(first) + 60)
    room.connect("a", can_edit=True)
    assert room.receive("a", encode_update(first)).update is not None
    outs = [room.receive("a", encode_update(_edit(f"c{i}", "y" * 100))) for i in range(2, 5)]
    assert [decode_message(r) for r in outs[0].replies] == [AuthDenied(TOO_LARGE_REASON)]
    assert all(o.update is None and o.broadcast is None for o in outs)
    assert outs[1].replies == ()
    assert set(room.doc.get("clips", type=Map).keys()) == {"c1"}

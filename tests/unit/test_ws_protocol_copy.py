"""The per-connection websockets protocol: copied from one built the usual way, and the
frames read without its parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.utils import apply_mask

from server.close_codes import CloseCode
from server.ws.connection import _ServerProtocol, _whole_binary_frames

# State the constructor gives each protocol object of its own (``_id`` holds the id once read).
_OWN = ("_id", "reader", "events", "writes", "parser", "extensions")


@pytest.mark.parametrize("deflate", [False, True])
def test_a_copy_is_the_protocol_the_constructor_builds(deflate: bool) -> None:
    extensions = [ServerPerMessageDeflateFactory()] if deflate else None
    built = _ServerProtocol(state=State.OPEN, extensions=extensions, max_size=1000)
    first = _ServerProtocol.opened(extensions, 1000)
    second = _ServerProtocol.opened(extensions, 1000)
    assert type(first) is _ServerProtocol
    assert "_id" not in vars(first)  # drawn when read
    assert first.id != second.id != built.id
    assert first.id == first.id  # and then kept
    assert set(vars(first)) == set(vars(built))
    for name, value in vars(built).items():
        if name in _OWN:
            assert type(getattr(first, name)) is type(value)
            assert getattr(first, name) is not getattr(second, name)
        else:
            assert getattr(first, name) == value, name
    assert first.state is State.OPEN


def test_copies_parse_apart_and_keep_their_limits() -> None:
    small, other = _ServerProtocol.opened(None, 10), _ServerProtocol.opened(None, 10)
    half = Frame(Opcode.BINARY, b"abc").serialize(mask=True)
    small.receive_data(half[:3])
    other.receive_data(Frame(Opcode.BINARY, b"xyz").serialize(mask=True))
    small.receive_data(half[3:])
    assert [bytes(f.data) for f in small.events_received()] == [b"abc"]
    assert [bytes(f.data) for f in other.events_received()] == [b"xyz"]
    small.receive_data(Frame(Opcode.BINARY, bytes(11)).serialize(mask=True))
    assert small.close_sent is not None and small.close_sent.code == CloseCode.MESSAGE_TOO_BIG
    assert other.state is State.OPEN
    assert _ServerProtocol.opened(None, 100).max_message_size == 100


# -- whole binary frames, read without websockets' parser ----------------------------------


def _raw_frame(opcode: int, fin: bool, rsv: bool, masked: bool, wide: bool, data: bytes) -> bytes:
    """A frame as a client might send it, valid or not (``wide``: a 16-bit length even when
    7 bits would do)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv else 0) | opcode])
    flag = 0x80 if masked else 0
    if len(data) < 126 and not wide:
        head += bytes([flag | len(data)])
    else:
        head += bytes([flag | 126]) + len(data).to_bytes(2, "big")
    if not masked:
        return head + data
    mask = b"\x0f\xf0\x55\xaa"
    return head + mask + apply_mask(data, mask)


_frames = st.builds(
    _raw_frame,
    st.sampled_from([2, 2, 2, 1, 0, 9, 8, 3]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.binary(max_size=130), st.integers(120, 300).map(bytes)),
)


def _events(ws: _ServerProtocol) -> list[tuple[Opcode, bool, bytes]]:
    return [(e.opcode, e.fin, bytes(e.data)) for e in ws.events_received()]


@settings(max_examples=800)
@given(st.lists(_frames, min_size=1, max_size=4), st.integers(0, 2), st.sampled_from([100, 200]))
def test_whole_binary_frames_are_what_websockets_reads(
    frames: list[bytes], cut: int, max_size: int
) -> None:
    data = b"".join(frames)
    # Something already received: a first frame, or part of one, or nothing; and the read
    # may end within its last frame.
    before = frames[0][: len(frames[0]) // 2] if cut == 1 else b""
    if cut == 2:
        data = data[:-1]
    ours, theirs = _ServerProtocol.opened(None, max_size), _ServerProtocol.opened(None, max_size)
    for ws in (ours, theirs):
        ws.receive_data(before)
        ws.events_received()
    messages, taken = _whole_binary_frames(ours, data)
    assert 0 <= taken <= len(data)
    assert bool(messages) == bool(taken)
    # What is left is read by websockets, from the start of a frame.
    ours.receive_data(data[taken:])
    theirs.receive_data(data)
    assert _events(theirs) == [(Opcode.BINARY, True, m) for m in messages] + _events(ours)
    assert ours.data_to_send() == theirs.data_to_send()
    assert (ours.parser_exc is None) == (theirs.parser_exc is None)
    assert ours.state is theirs.state and ours.current_size == theirs.current_size
    assert ours.reader.buffer == theirs.reader.buffer


def test_the_usual_frames_are_read_without_the_parser() -> None:
    ws = _ServerProtocol.opened(None, 1000)
    for payload in (b"\x00\x00\x01\x00", bytes(125), bytes(126), bytes(1000)):
        assert _taken(ws, _masked(payload)) == ([payload], len(_masked(payload)))
    # A join's step 1 and its answer to ours, in one read; then part of the next frame.
    two = _masked(b"\x00\x00\x01\x00") + _masked(b"\x00\x01\x02\x00\x00")
    assert _taken(ws, two) == (
        [b"\x00\x00\x01\x00", b"\x00\x01\x02\x00\x00"],
        len(two),
    )
    assert _taken(ws, two + _masked(b"xyz")[:5]) == (
        [b"\x00\x00\x01\x00", b"\x00\x01\x02\x00\x00"],
        len(two),
    )
    ping = Frame(Opcode.PING, b"").serialize(mask=True)
    assert _taken(ws, _masked(b"a") + ping + _masked(b"b")) == (
        [b"a"],
        len(_masked(b"a")),
    )
    assert _taken(ws, _masked(bytes(1001))) == ([], 0)  # over the limit
    assert _taken(ws, _masked(b"a") + _masked(bytes(1001))) == ([b"a"], len(_masked(b"a")))
    unmasked = Frame(Opcode.BINARY, b"x").serialize(mask=False)
    assert _taken(ws, unmasked) == ([], 0)
    ws.receive_data(Frame(Opcode.BINARY, b"a", fin=False).serialize(mask=True))
    assert _taken(ws, _masked(b"b")) == ([], 0)  # a fragmented message is open
    # Within a frame with nothing left in the buffer: its head and length are taken.
    within = _ServerProtocol.opened(None, 1000)
    within.receive_data(_masked(bytes(200))[:4])
    assert not within.reader.buffer
    assert _taken(within, _masked(b"c")) == ([], 0)


def _taken(ws: _ServerProtocol, data: bytes) -> tuple[list[bytes], int]:
    messages, taken = _whole_binary_frames(ws, data)
    return list(messages), taken


def _masked(payload: bytes) -> bytes:
    return Frame(Opcode.BINARY, payload).serialize(mask=True)

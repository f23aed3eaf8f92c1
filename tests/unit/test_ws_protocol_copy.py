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
from server.ws.connection import _ServerProtocol, _whole_binary_frame

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


@settings(max_examples=500)
@given(st.lists(_frames, min_size=1, max_size=2), st.integers(0, 1), st.sampled_from([100, 200]))
def test_a_whole_binary_frame_is_what_websockets_reads(
    frames: list[bytes], cut: int, max_size: int
) -> None:
    data = b"".join(frames)
    # Something already received: a first frame, or part of one, or nothing.
    before = frames[0][: len(frames[0]) // 2] if cut else b""
    ours, theirs = _ServerProtocol.opened(None, max_size), _ServerProtocol.opened(None, max_size)
    for ws in (ours, theirs):
        ws.receive_data(before)
        ws.events_received()
    message = _whole_binary_frame(ours, data)
    if message is None:
        return
    theirs.receive_data(data)
    events = theirs.events_received()
    assert [(e.opcode, e.fin, bytes(e.data)) for e in events] == [(Opcode.BINARY, True, message)]
    assert theirs.parser_exc is None and theirs.data_to_send() == []
    assert theirs.current_size is None and not theirs.reader.buffer


def test_the_usual_frames_are_read_without_the_parser() -> None:
    ws = _ServerProtocol.opened(None, 1000)
    for payload in (b"\x00\x00\x01\x00", bytes(125), bytes(126), bytes(1000)):
        assert _whole_binary_frame(ws, _masked(payload)) == payload
    assert _whole_binary_frame(ws, _masked(bytes(1001))) is None  # over the limit
    assert _whole_binary_frame(ws, Frame(Opcode.BINARY, b"x").serialize(mask=False)) is None
    ws.receive_data(Frame(Opcode.BINARY, b"a", fin=False).serialize(mask=True))
    assert _whole_binary_frame(ws, _masked(b"b")) is None  # a fragmented message is open
    # Within a frame with nothing left in the buffer: its head and length are taken.
    within = _ServerProtocol.opened(None, 1000)
    within.receive_data(_masked(bytes(200))[:4])
    assert not within.reader.buffer
    assert _whole_binary_frame(within, _masked(b"c")) is None


def _masked(payload: bytes) -> bytes:
    return Frame(Opcode.BINARY, payload).serialize(mask=True)

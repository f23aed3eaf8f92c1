"""The pure codec: plain bytes in, typed messages out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Map, write_var_uint

from crdt.errors import ProtocolError, UnknownMessage
from crdt.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    _decode_message,
    decode_awareness,
    decode_message,
    encode_auth_denied,
    encode_awareness,
    encode_awareness_message,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)


def _update() -> bytes:
    doc: Doc = Doc()
    doc.get("clips", type=Map)["c1"] = "x"
    return doc.get_update()


def test_round_trips() -> None:
    update = _update()
    assert decode_message(encode_update(update)) == SyncUpdate(update)
    assert decode_message(encode_sync_step2(update)) == SyncStep2(update)
    assert decode_message(encode_sync_step1(b"\x00")) == SyncStep1(b"\x00")
    assert decode_message(encode_query_awareness()) == QueryAwareness()
    assert decode_message(encode_auth_denied("no")) == AuthDenied("no")
    entries = [AwarenessEntry(1, 2, '{"a":1}'), AwarenessEntry(3, 4, "null")]
    message = decode_message(encode_awareness_message(entries))
    assert isinstance(message, AwarenessUpdate)
    assert decode_awareness(message.payload, state_bytes_max=100) == entries


def test_known_wire_bytes() -> None:
    # Bytes the JS client produces (y-protocols): sync step 1 of an empty doc, query-awareness.
    assert encode_sync_step1(b"\x00") == b"\x00\x00\x01\x00"
    assert encode_query_awareness() == b"\x03"
    assert encode_auth_denied("r") == b"\x02\x00\x01r"


def test_non_ascii_awareness_uses_byte_length() -> None:
    entry = AwarenessEntry(9, 1, '{"name":"Zoë 🎬"}')
    payload = encode_awareness([entry])
    assert decode_awareness(payload, state_bytes_max=100) == [entry]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", ProtocolError),
        (b"\x00", ProtocolError),
        (b"\x00\x02", ProtocolError),
        (b"\x00\x02\x05ab", ProtocolError),
        (b"\x04", UnknownMessage),
        (b"\x00\x03\x00", UnknownMessage),
        (b"\x02\x01\x00", UnknownMessage),
        (b"\x03\x00", ProtocolError),  # trailing byte
        (b"\xff" * 11 + b"\x01", ProtocolError),  # varuint too long
    ],
)
def test_bad_frames(frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_message(frame)


def test_awareness_limits() -> None:
    big = encode_awareness([AwarenessEntry(1, 1, '{"x":"' + "a" * 200 + '"}')])
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_awareness(big, state_bytes_max=100)
    with pytest.raises(ProtocolError, match="JSON"):
        decode_awareness(encode_awareness([AwarenessEntry(1, 1, "{nope")]), state_bytes_max=100)
    with pytest.raises(ProtocolError):
        decode_awareness(b"\x05\x01", state_bytes_max=100)  # count larger than payload
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode_awareness(b"\x01\x01\x01\x02\xc3\x28", state_bytes_max=100)


@given(st.binary(max_size=64))
def test_decoder_never_raises_anything_but_protocol_error(data: bytes) -> None:
    try:
        message = decode_message(data)
    except ProtocolError:
        return
    if isinstance(message, AwarenessUpdate):
        try:
            decode_awareness(message.payload, state_bytes_max=1024)
        except ProtocolError:
            pass


@given(st.binary(max_size=64))
def test_prefixed_garbage_is_rejected_or_decoded(data: bytes) -> None:
    for prefix in (b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x01", b"\x02\x00"):
        try:
            decode_message(prefix + data)
        except ProtocolError:
            pass


@pytest.mark.parametrize(
    "frame",
    [
        b"\xff" * 200_000,
        b"\x00\x02" + b"\xff" * 200_000,
        b"\x01" + write_var_uint(100_000) + b"\x81" * 100_000,  # the awareness entry count
    ],
)
def test_over_long_varuints_are_refused_without_walking_them(frame: bytes) -> None:
    # pycrdt's decoder would walk all of it with a growing integer (seconds of CPU); the
    # codec refuses it after looking at the first ten bytes. This asserts the outcome; the
    # cost is visible as the test's own run time.
    with pytest.raises(ProtocolError, match="too long"):
        message = decode_message(frame)
        if isinstance(message, AwarenessUpdate):
            decode_awareness(message.payload, state_bytes_max=1 << 20)


def _decoded(frame: bytes) -> object:
    try:
        return decode_message(frame)
    except ProtocolError as exc:
        return (type(exc), str(exc))


def _decoded_fully(frame: bytes) -> object:
    try:
        return _decode_message(frame)
    except ProtocolError as exc:
        return (type(exc), str(exc))


@given(
    st.one_of(
        st.binary(max_size=8),
        st.tuples(st.integers(0, 3), st.integers(0, 4), st.binary(max_size=140)).map(
            lambda t: bytes([0, t[1]]) + write_var_uint(max(0, len(t[2]) + t[0] - 1)) + t[2]
        ),
    )
)
def test_short_sync_messages_read_as_the_full_decoder_reads_them(frame: bytes) -> None:
    assert _decoded(frame) == _decoded_fully(frame)


def test_short_sync_messages_are_read_without_the_decoder() -> None:
    # 0x80 as a length is the first byte of a longer varuint, not 128.
    long = bytes([0, 0, 0x80, 0x01]) + bytes(128)
    assert decode_message(long) == SyncStep1(bytes(128))
    with pytest.raises(ProtocolError):  # 0x81 0x01 is 129, one more than there is
        decode_message(bytes([0, 0, 0x81, 0x01]) + bytes(128))
    assert decode_message(b"\x00\x02\x02\x00\x00") == SyncUpdate(b"\x00\x00")
    assert decode_message(b"\x00\x01\x00") == SyncStep2(b"")

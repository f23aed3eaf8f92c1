"""The y-websocket wire protocol as pure functions: bytes in, typed messages out.

A frame (one websocket binary message) is a varuint message type, then:

    0 sync             varuint sub-type (0 step 1, 1 step 2, 2 update), varbytes payload
    1 awareness        varbytes awareness update
    2 auth             varuint 0 (permission denied), varstring reason
    3 query-awareness  nothing
  100 saved            varbytes state vector now durable (server to opted-in clients only)

Encoding uses pycrdt's own helpers. Decoding uses pycrdt's ``Decoder`` too, but that decoder
trusts its input (a truncated varuint raises IndexError, a truncated payload is returned short
without complaint), so every read here is bounds-checked and every failure becomes a
``ProtocolError``. Unlike pycrdt's ``handle_sync_message``, unknown types are reported, never
silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from pycrdt import (
    Decoder,
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_update_message,
    write_message,
    write_var_uint,
)

from crdt.errors import ProtocolError, UnknownMessage

__all__ = [
    "EMPTY_STATE_VECTOR",
    "EMPTY_UPDATE",
    "AuthDenied",
    "AwarenessEntry",
    "AwarenessUpdate",
    "Message",
    "MessageType",
    "QueryAwareness",
    "Saved",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "decode_awareness",
    "decode_message",
    "encode_auth_denied",
    "encode_awareness",
    "encode_awareness_message",
    "encode_query_awareness",
    "encode_saved",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
]

# The encoding of an update that changes nothing, and of an empty state vector.
EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"

# A varuint longer than this does not fit in 64 bits: refuse it instead of looping on garbage.
_VARUINT_BYTES_MAX = 10


class MessageType(IntEnum):
    SYNC = YMessageType.SYNC
    AWARENESS = YMessageType.AWARENESS
    AUTH = 2
    QUERY_AWARENESS = 3
    # Ours, sent only to clients that opt in: the state vector that is now durable.
    SAVED = 100


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    payload: bytes


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


@dataclass(frozen=True, slots=True)
class AuthDenied:
    reason: str


@dataclass(frozen=True, slots=True)
class Saved:
    state_vector: bytes


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessUpdate | QueryAwareness | AuthDenied | Saved


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence: ``state`` is its JSON text, ``"null"`` when it left."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"


class _Reader:
    """Bounds-checked reads over pycrdt's Decoder."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._decoder = Decoder(data)

    def _check_varuint_ends(self) -> None:
        # pycrdt's Decoder walks a varuint to its last byte, with a growing integer: an
        # over-long one (200 KB of 0xff) costs seconds. Look for its end within the bound first.
        i0 = self._decoder.i0
        data = self._data
        if i0 < len(data) and data[i0] < 0x80:
            return  # one byte: nearly every varuint of a message (types, lengths of small parts)
        if not any(byte < 0x80 for byte in data[i0 : i0 + _VARUINT_BYTES_MAX]):
            if len(data) - i0 >= _VARUINT_BYTES_MAX:
                raise ProtocolError("varuint too long")
            raise ProtocolError("truncated varuint")

    def var_uint(self) -> int:
        self._check_varuint_ends()
        start = self._decoder.length
        try:
            value = self._decoder.read_var_uint()
        except (IndexError, RuntimeError) as exc:
            raise ProtocolError("truncated varuint") from exc
        if start - self._decoder.length > _VARUINT_BYTES_MAX:
            raise ProtocolError("varuint too long")
        return value

    def var_bytes(self) -> bytes:
        start = self._decoder.length
        if start <= 0:
            raise ProtocolError("missing payload")
        self._check_varuint_ends()
        try:
            payload = self._decoder.read_message()
        except (IndexError, RuntimeError) as exc:
            raise ProtocolError("truncated payload length") from exc
        # pycrdt subtracts the declared length even when fewer bytes remain.
        if payload is None or self._decoder.length < 0:
            raise ProtocolError("payload shorter than its declared length")
        if start - self._decoder.length - len(payload) > _VARUINT_BYTES_MAX:
            raise ProtocolError("varuint too long")
        return bytes(payload)

    def done(self) -> None:
        if self._decoder.length != 0:
            raise ProtocolError(f"{self._decoder.length} trailing bytes after message")


# Sync messages by sub-type (``_short_sync``).
_SYNC_KINDS: tuple[type[SyncStep1] | type[SyncStep2] | type[SyncUpdate], ...] = (
    SyncStep1,
    SyncStep2,
    SyncUpdate,
)


def decode_message(frame: bytes) -> Message:
    """Decode one websocket frame. Raises ``ProtocolError`` (or ``UnknownMessage``)."""
    # Most frames are short sync messages (a join's step 1, a keystroke's update): type,
    # sub-type and payload length one byte each, read here without a decoder. The full
    # reading gives the same message for them (a test compares the two).
    if len(frame) >= 3 and frame[0] == 0 and frame[1] < 3 and frame[2] == len(frame) - 3 < 0x80:
        return _SYNC_KINDS[frame[1]](frame[3:])
    return _decode_message(frame)


def _decode_message(frame: bytes) -> Message:
    reader = _Reader(frame)
    kind = reader.var_uint()
    message: Message
    if kind == MessageType.SYNC:
        sub = reader.var_uint()
        payload = reader.var_bytes()
        if sub == YSyncMessageType.SYNC_STEP1:
            message = SyncStep1(payload)
        elif sub == YSyncMessageType.SYNC_STEP2:
            message = SyncStep2(payload)
        elif sub == YSyncMessageType.SYNC_UPDATE:
            message = SyncUpdate(payload)
        else:
            raise UnknownMessage(f"unknown sync message type {sub}")
    elif kind == MessageType.AWARENESS:
        message = AwarenessUpdate(reader.var_bytes())
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MessageType.SAVED:
        message = Saved(reader.var_bytes())
    elif kind == MessageType.AUTH:
        if reader.var_uint() != 0:
            raise UnknownMessage("unknown auth message type")
        message = AuthDenied(_utf8(reader.var_bytes()))
    else:
        raise UnknownMessage(f"unknown message type {kind}")
    reader.done()
    return message


def decode_awareness(payload: bytes, *, state_bytes_max: int) -> list[AwarenessEntry]:
    """Decode an awareness update, checking that every state is JSON (peers parse it)."""
    reader = _Reader(payload)
    count = reader.var_uint()
    if count > len(payload):
        raise ProtocolError("awareness entry count exceeds payload size")
    entries = []
    for _ in range(count):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        raw = reader.var_bytes()
        if len(raw) > state_bytes_max:
            raise ProtocolError(f"awareness state of {len(raw)} bytes exceeds {state_bytes_max}")
        state = _utf8(raw)
        try:
            json.loads(state)
        except (ValueError, RecursionError) as exc:  # deep nesting exhausts the JSON parser
            raise ProtocolError("awareness state is not JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    reader.done()
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """The awareness update payload for ``entries``.

    pycrdt's ``Encoder.write_var_string`` writes the character count rather than the UTF-8
    byte count, which breaks non-ASCII names, so strings are framed with ``write_message``.
    """
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(write_message(entry.state.encode()))
    return b"".join(parts)


def encode_awareness_message(entries: list[AwarenessEntry]) -> bytes:
    return create_awareness_message(encode_awareness(entries))


def encode_sync_step1(state_vector: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP1]) + write_message(state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(update)


def encode_update(update: bytes) -> bytes:
    return create_update_message(update)


def encode_query_awareness() -> bytes:
    return write_var_uint(MessageType.QUERY_AWARENESS)


def encode_saved(state_vector: bytes) -> bytes:
    return write_var_uint(MessageType.SAVED) + write_message(state_vector)


def encode_auth_denied(reason: str) -> bytes:
    return write_var_uint(MessageType.AUTH) + write_var_uint(0) + write_message(reason.encode())


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("string is not UTF-8") from exc

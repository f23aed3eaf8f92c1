"""Property-based fuzzing of everything that parses client bytes or client-written documents.

- ``decode_message`` / ``decode_awareness``: valid frames built token by token, then mutated
  (declared lengths made huge or wrong, varuints made over-long, truncation, bit flips,
  inserted and deleted bytes). Only ``ProtocolError`` may come out.
- ``read_timeline``: arbitrary documents written with raw pycrdt (random roots, nested maps,
  arrays and texts, wrong types, NaN, infinities, huge integers, random strings), read both
  where they were written and after travelling as an update. It never raises, and its JSON
  is strict JSON.
- ``Room``: random interleavings of genuine updates and bad frames. A rejected frame leaves the
  document untouched, every genuine update is accepted, and the content is exactly what the
  accepted updates produce.

Example counts scale with ``FLOWAI_LONG_TESTS`` (``tests/support/long_mode.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, merge_updates

from crdt.errors import ProtocolError
from crdt.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_awareness,
    decode_message,
    encode_awareness_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from crdt.room import Room
from crdt.timeline import ROOTS, read_timeline
from tests.support.long_mode import long_mode, scale

# The long mode runs for minutes; the short mode keeps the project's default limit.
pytestmark = pytest.mark.timeout(scale(120, 1800))

STATE_BYTES_MAX = 256

# Short mode replays the same examples on every run (a stable CI gate); the long mode explores.
FUZZ = settings(
    max_examples=scale(300, 20_000),
    derandomize=not long_mode(),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_DOCS = settings(FUZZ, max_examples=scale(150, 5_000))
FUZZ_ROOM = settings(FUZZ, max_examples=scale(80, 2_000))


def expect_only_protocol_error(call: Callable[[], Any]) -> Any:
    """Run ``call``; ``ProtocolError`` is the one accepted failure, anything else fails the
    test (pycrdt's Rust panics derive from BaseException, hence the broad catch)."""
    try:
        return call()
    except ProtocolError:
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        raise AssertionError(f"{type(exc).__name__} escaped the decoder: {exc!r}") from exc


# --- Frames as tokens ------------------------------------------------------------------------


def uleb(value: int, *, pad: int = 0) -> bytes:
    """A varuint of any size; ``pad`` adds redundant zero groups (an over-long encoding of
    the same value)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    if pad:
        out.append(value | 0x80)
        out += b"\x80" * (pad - 1)
        out.append(0)
    else:
        out.append(value)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Token:
    """``uint``: a varuint. ``bytes``: a varbytes field, ``declared`` overriding its length.
    ``raw``: bytes as they are."""

    kind: str
    value: int | bytes
    declared: int | None = None
    pad: int = 0

    def encode(self) -> bytes:
        if self.kind == "uint":
            assert isinstance(self.value, int)
            return uleb(self.value, pad=self.pad)
        assert isinstance(self.value, bytes)
        if self.kind == "raw":
            return self.value
        length = len(self.value) if self.declared is None else self.declared
        return uleb(length, pad=self.pad) + self.value


def u(value: int) -> Token:
    return Token("uint", value)


def b(payload: bytes) -> Token:
    return Token("bytes", payload)


def serialise(tokens: list[Token]) -> bytes:
    return b"".join(t.encode() for t in tokens)


HUGE = [
    0x7F,
    0x80,
    2**14,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    2**70,
    2**100,
]


@st.composite
def mutate_tokens(draw: st.DrawFn, tokens: list[Token]) -> list[Token]:
    """Structure-aware mutations: a length or number made huge or off by a little, a varuint
    padded to an over-long encoding, a token dropped or repeated."""
    tokens = list(tokens)
    for _ in range(draw(st.integers(0, 2))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        tok = tokens[i]
        choice = draw(st.sampled_from(["huge", "nudge", "pad", "drop", "repeat"]))
        if choice == "drop":
            del tokens[i]
        elif choice == "repeat":
            tokens.insert(i, tok)
        elif choice == "pad":
            tokens[i] = Token(tok.kind, tok.value, tok.declared, draw(st.integers(1, 12)))
        elif tok.kind == "uint":
            assert isinstance(tok.value, int)
            new = (
                draw(st.sampled_from(HUGE))
                if choice == "huge"
                else tok.value + draw(st.integers(-2, 2))
            )
            tokens[i] = Token("uint", max(new, 0), pad=tok.pad)
        elif tok.kind == "bytes":
            assert isinstance(tok.value, bytes)
            real = len(tok.value)
            new = (
                draw(st.sampled_from(HUGE)) if choice == "huge" else real + draw(st.integers(-3, 3))
            )
            tokens[i] = Token("bytes", tok.value, max(new, 0), tok.pad)
    return tokens


@st.composite
def mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """Byte-level damage: truncation, bit flips, inserted, deleted and boundary bytes."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        choice = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "boundary"]))
        pos = draw(st.integers(0, len(buf)))
        if choice == "truncate":
            del buf[pos:]
        elif choice == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif not buf or pos == len(buf):
            continue
        elif choice == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif choice == "delete":
            del buf[pos : pos + draw(st.integers(1, 4))]
        else:
            buf[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
    return bytes(buf)


# --- Realistic payloads ----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)


@st.composite
def small_docs(draw: st.DrawFn) -> Doc[Any]:
    """A document with a few edits, as a browser would produce them (a drawn client id keeps
    the bytes reproducible)."""
    doc: Doc[Any] = Doc(client_id=draw(st.integers(0, 2**53 - 1)))
    for _ in range(draw(st.integers(0, 3))):
        with doc.transaction():
            root = doc.get(draw(st.sampled_from(ROOTS)), type=Map)
            key = draw(st.text(max_size=6))
            if draw(st.booleans()):
                root[key] = Map({"kind": "video", "start_ms": draw(st.integers(0, 10**6))})
            else:
                root[key] = draw(st.text(max_size=12))
    return doc


@st.composite
def awareness_tokens(draw: st.DrawFn) -> tuple[list[Token], list[AwarenessEntry]]:
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        state = "null" if draw(st.booleans()) else json.dumps(draw(json_values))
        if len(state.encode()) > STATE_BYTES_MAX:
            state = "{}"
        entries.append(
            AwarenessEntry(draw(st.integers(0, 2**53)), draw(st.integers(0, 2**32)), state)
        )
    tokens = [u(len(entries))]
    for entry in entries:
        tokens += [u(entry.client_id), u(entry.clock), b(entry.state.encode())]
    return tokens, entries


@st.composite
def frames(draw: st.DrawFn) -> tuple[list[Token], Message]:
    """A well-formed frame of every message type, as tokens, with the message it encodes."""
    kind = draw(
        st.sampled_from(["step1", "step2", "update", "awareness", "query", "auth", "saved"])
    )
    if kind in ("step1", "saved"):
        sv = draw(small_docs()).get_state() if draw(st.booleans()) else draw(st.binary(max_size=12))
        if kind == "step1":
            return [u(0), u(0), b(sv)], SyncStep1(sv)
        return [u(100), b(sv)], Saved(sv)
    if kind in ("step2", "update"):
        update = (
            draw(small_docs()).get_update() if draw(st.booleans()) else draw(st.binary(max_size=24))
        )
        if kind == "step2":
            return [u(0), u(1), b(update)], SyncStep2(update)
        return [u(0), u(2), b(update)], SyncUpdate(update)
    if kind == "awareness":
        tokens, _ = draw(awareness_tokens())
        payload = serialise(tokens)
        return [u(1), b(payload)], AwarenessUpdate(payload)
    if kind == "auth":
        reason = draw(st.text(max_size=20))
        return [u(2), u(0), b(reason.encode())], AuthDenied(reason)
    return [u(3)], QueryAwareness()


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    tokens, _ = draw(frames())
    if tokens[0].value == 1 and draw(st.booleans()):
        # Damage the awareness payload's own structure too.
        inner, _ = draw(awareness_tokens())
        tokens = [tokens[0], b(serialise(draw(mutate_tokens(inner))))]
    return draw(mutate_bytes(serialise(draw(mutate_tokens(tokens)))))


# --- Decoder properties ----------------------------------------------------------------------


@given(frames())
@FUZZ
def test_well_formed_frames_decode_to_what_they_encode(case: tuple[list[Token], Message]) -> None:
    tokens, expected = case
    assert decode_message(serialise(tokens)) == expected
    if isinstance(expected, AwarenessUpdate):
        decode_awareness(expected.payload, state_bytes_max=STATE_BYTES_MAX)


def _check_decoded(message: Message | None) -> None:
    if not isinstance(message, AwarenessUpdate):
        return
    entries = expect_only_protocol_error(
        lambda: decode_awareness(message.payload, state_bytes_max=STATE_BYTES_MAX)
    )
    for entry in entries or []:
        assert len(entry.state.encode()) <= STATE_BYTES_MAX
        json.loads(entry.state)


@given(mutated_frames())
@FUZZ
def test_mutated_frames_raise_only_protocol_error(frame: bytes) -> None:
    message = expect_only_protocol_error(lambda: decode_message(frame))
    event("decoded" if message is not None else "rejected")
    _check_decoded(message)


@given(st.binary(max_size=512))
@FUZZ
def test_random_bytes_raise_only_protocol_error(frame: bytes) -> None:
    _check_decoded(expect_only_protocol_error(lambda: decode_message(frame)))


@given(
    awareness_tokens()
    .flatmap(lambda case: mutate_tokens(case[0]))
    .map(serialise)
    .flatmap(mutate_bytes),
    st.integers(0, 2 * STATE_BYTES_MAX),
)
@FUZZ
def test_mutated_awareness_raises_only_protocol_error(payload: bytes, limit: int) -> None:
    entries = expect_only_protocol_error(lambda: decode_awareness(payload, state_bytes_max=limit))
    for entry in entries or []:
        assert len(entry.state.encode()) <= limit


@given(
    st.recursive(
        st.just("0") | st.just('"x"'),
        lambda inner: inner.map(lambda s: f"[{s}]") | inner.map(lambda s: '{"k":' + s + "}"),
        max_leaves=4,
    ),
    st.integers(100, 3000),
)
@FUZZ
def test_deeply_nested_awareness_state_is_a_protocol_error(base: str, depth: int) -> None:
    state = "[" * depth + base + "]" * depth
    payload = serialise([u(1), u(7), u(1), b(state.encode())])
    expect_only_protocol_error(lambda: decode_awareness(payload, state_bytes_max=1 << 16))


class _CountingBytes(bytes):
    """bytes that count single-byte reads, to measure how far the decoder walks."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            type(self).reads += 1
        return super().__getitem__(index)


_LONG_VARUINT = b"\xff" * 5_000 + b"\x01"


@pytest.mark.parametrize(
    "frame",
    [
        _LONG_VARUINT,  # message type
        b"\x00" + _LONG_VARUINT,  # sync sub-type
        b"\x00\x02" + _LONG_VARUINT,  # update length
        b"\x01" + _LONG_VARUINT,  # awareness payload length
        b"\x01" + uleb(len(_LONG_VARUINT)) + _LONG_VARUINT,  # awareness entry count
    ],
    ids=["type", "sync-type", "update-length", "awareness-length", "awareness-count"],
)
def test_over_long_varuint_is_refused_after_a_bounded_read(frame: bytes) -> None:
    # pycrdt's Decoder walks a varuint to its end with a growing integer (quadratic): the codec
    # must refuse one that does not end within ten bytes before handing it over.
    _CountingBytes.reads = 0
    with pytest.raises(ProtocolError):
        message = decode_message(_CountingBytes(frame))
        if isinstance(message, AwarenessUpdate):
            decode_awareness(_CountingBytes(message.payload), state_bytes_max=1024)
    assert _CountingBytes.reads <= 64


# --- read_timeline over arbitrary documents -------------------------------------------------

ids = st.sampled_from(["", "t1", "t2", "c1", "a1", "x"]) | st.text(max_size=6)

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # what pycrdt can store
    | st.sampled_from([2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63)])
    | st.floats()  # NaN and infinities included
    | st.sampled_from([0.5, 1000.0, -0.0, 1e300, float("nan"), float("inf"), float("-inf")])
    | st.text(max_size=12)
    | st.text(min_size=100, max_size=300)
    | st.binary(max_size=8)
    | ids
    | st.sampled_from(["video", "audio", "subtitle", "overlay", "image", "title", "upload"])
)
plain_values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)


@dataclass(frozen=True, slots=True)
class Shared:
    """A shared type to create: ``map`` (dict of specs), ``array`` (list), ``text`` (str)."""

    kind: str
    value: Any


def prelim(spec: Any) -> Any:
    """The pycrdt value for a spec: shared types become Map/Array/Text, the rest is stored as
    plain JSON-like content."""
    if not isinstance(spec, Shared):
        return spec
    if spec.kind == "map":
        return Map({k: prelim(v) for k, v in spec.value.items()})
    if spec.kind == "array":
        return Array([prelim(v) for v in spec.value])
    return Text(spec.value)


values = st.recursive(
    plain_values,
    lambda c: (
        st.builds(Shared, st.just("map"), st.dictionaries(st.text(max_size=6), c, max_size=4))
        | st.builds(Shared, st.just("array"), st.lists(c, max_size=3))
        | st.builds(Shared, st.just("text"), st.text(max_size=10))
    ),
    max_leaves=8,
)

SCHEMA_FIELDS = [
    "kind", "name", "order", "muted", "locked", "track", "asset", "start_ms", "duration_ms",
    "source_in_ms", "volume", "text", "uri", "origin", "title", "fps", "width", "height",
    "thumbnail_asset",
]  # fmt: skip

good_field_values = st.sampled_from(
    [0, 1, 1000.0, 30.0, 0.5, True, False, "video", "audio", "subtitle", "t1", "a1", "V", "x"]
)
entities = st.builds(
    Shared,
    st.just("map"),
    st.dictionaries(
        st.sampled_from(SCHEMA_FIELDS) | st.text(max_size=4),
        good_field_values | values,
        max_size=9,
    ),
)
root_specs = st.one_of(
    st.builds(Shared, st.just("map"), st.dictionaries(ids, entities | values, max_size=5)),
    st.builds(Shared, st.just("map"), st.dictionaries(st.sampled_from(SCHEMA_FIELDS), values)),
    st.builds(Shared, st.just("array"), st.lists(values, max_size=3)),
    st.builds(Shared, st.just("text"), st.text(max_size=10)),
)
documents = st.dictionaries(st.sampled_from(ROOTS) | st.text(max_size=5), root_specs, max_size=6)


def build_doc(spec: dict[str, Shared], removals: list[tuple[str, str]]) -> Doc[Any]:
    doc: Doc[Any] = Doc(client_id=1)
    with doc.transaction():
        for name, root_spec in spec.items():
            doc[name] = prelim(root_spec)
    # A later transaction deletes some entries, leaving tombstones behind.
    with doc.transaction():
        for name, key in removals:
            root = doc[name] if name in spec and spec[name].kind == "map" else None
            if isinstance(root, Map) and key in root:
                del root[key]
    return doc


def assert_reads_as_strict_json(doc: Doc[Any]) -> None:
    data = read_timeline(doc).to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data


@given(documents, st.lists(st.tuples(st.sampled_from(ROOTS), ids), max_size=4))
@FUZZ_DOCS
def test_read_timeline_never_raises_and_gives_strict_json(
    spec: dict[str, Shared], removals: list[tuple[str, str]]
) -> None:
    doc = build_doc(spec, removals)
    assert_reads_as_strict_json(doc)
    # The same content as a server receives it: roots arrive without a declared type.
    received: Doc[Any] = Doc()
    received.apply_update(doc.get_update())
    assert_reads_as_strict_json(received)


# --- The room under random frames ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One frame sent to the room: ``edit`` is a genuine update of writer ``who``;
    ``bad`` a damaged frame; ``noise`` a valid non-update message; ``viewer`` an update from
    a read-only connection."""

    kind: str
    who: int = 0
    key: str = ""
    value: Any = None
    as_step2: bool = False
    frame: bytes = b""


steps = st.one_of(
    st.builds(
        Step,
        st.just("edit"),
        st.integers(0, 2),
        ids,
        plain_values
        | st.builds(Shared, st.just("map"), st.dictionaries(ids, plain_values, max_size=3)),
        st.booleans(),
    ),
    st.builds(Step, st.just("bad"), frame=mutated_frames()),
    st.builds(Step, st.just("bad"), frame=st.binary(max_size=64)),
    st.builds(Step, st.just("noise"), frame=frames().map(lambda f: serialise(f[0]))),
    st.builds(Step, st.just("viewer"), key=ids, value=st.text(max_size=5)),
)


def doc_content(doc: Doc[Any]) -> tuple[Any, ...]:
    roots = {name: doc.get(name, type=Map).to_py() for name in ROOTS}
    return doc.get_state(), json.dumps(roots, sort_keys=True, default=repr), read_timeline(doc)


@given(st.lists(steps, max_size=25), st.randoms(use_true_random=False))
@FUZZ_ROOM
def test_room_content_is_what_the_valid_updates_produce(sequence: list[Step], rnd: Any) -> None:
    room = Room(awareness_state_bytes_max=STATE_BYTES_MAX)
    writers: list[Doc[Any]] = [Doc(client_id=1000 + i) for i in range(3)]
    conns = [object() for _ in writers]
    for writer in conns:
        room.connect(writer, can_edit=True)
    viewer = object()
    room.connect(viewer, can_edit=False)
    genuine: list[bytes] = []
    accepted: list[bytes] = []
    for step in sequence:
        conn: object
        if step.kind in ("edit", "viewer"):
            doc = writers[step.who] if step.kind == "edit" else Doc(client_id=999)
            before = doc.get_state()
            with doc.transaction():
                doc.get(rnd.choice(ROOTS), type=Map)[step.key] = prelim(step.value)
            update = doc.get_update(before)
            frame = encode_sync_step2(update) if step.as_step2 else encode_update(update)
            conn = conns[step.who] if step.kind == "edit" else viewer
            if step.kind == "edit":
                genuine.append(update)
        else:
            frame, conn = step.frame, rnd.choice(conns)
        snapshot = room.doc.get_update()
        try:
            out = room.receive(conn, frame)
        except ProtocolError:
            # The connection would be closed with 4400; the document is untouched.
            assert step.kind not in ("edit", "viewer"), "a genuine update was refused"
            assert room.doc.get_update() == snapshot
            room.disconnect(conn)
            room.connect(conn, can_edit=True)
            continue
        if conn is viewer:
            assert out.update is None and out.broadcast is None
        if out.update is not None:
            accepted.append(out.update)
            assert out.broadcast is not None
            # What is forwarded to the other connections is always a frame they can apply.
            forwarded = decode_message(out.broadcast)
            assert isinstance(forwarded, SyncUpdate) and forwarded.update == out.update
        elif step.kind == "edit" and genuine[-1] != b"\x00\x00":
            raise AssertionError("a genuine update was not accepted")
    replay: Doc[Any] = Doc()
    for update in accepted:
        replay.apply_update(update)
    assert doc_content(room.doc) == doc_content(replay)
    if all(update in genuine for update in accepted):
        event("only genuine updates accepted")
        valid_only: Doc[Any] = Doc()
        for update in genuine:
            valid_only.apply_update(update)
        assert doc_content(room.doc) == doc_content(valid_only)
    else:
        event("a damaged frame still decoded as an update")
    assert_reads_as_strict_json(room.doc)


def test_a_rejected_frame_between_genuine_updates_changes_nothing() -> None:
    """A concrete case of the property above, readable without hypothesis."""
    room = Room()
    room.connect("a", can_edit=True)
    writer: Doc[Any] = Doc()
    writer.get("clips", type=Map)["c1"] = Map({"kind": "video", "start_ms": 0})
    first = writer.get_update()
    before = writer.get_state()
    writer.get("clips", type=Map)["c2"] = "second"
    second = writer.get_update(before)
    room.receive("a", encode_update(first))
    with pytest.raises(ProtocolError):
        room.receive("a", encode_update(second)[:-3])
    room.receive("a", encode_sync_step1(b"\x00"))
    room.receive("a", encode_awareness_message([AwarenessEntry(1, 1, '{"a":1}')]))
    room.receive("a", encode_update(second))
    assert room.doc.get("clips", type=Map).to_py().keys() == {"c1", "c2"}


def _forged_history() -> tuple[bytes, bytes]:
    """Two updates of one client id with different content at the same clock: the second
    decodes, but its items hang off an item that is a string in a document that has the first."""
    first: Doc[Any] = Doc(client_id=77)
    first.get("clips", type=Map)["c"] = "text"
    forged: Doc[Any] = Doc(client_id=77)
    forged.get("clips", type=Map)["c"] = Map({"kind": "video"})
    return first.get_update(), forged.get_update()


def test_a_forged_history_is_a_protocol_error_and_changes_nothing() -> None:
    room = Room()
    room.connect("a", can_edit=True)
    first, forged = _forged_history()
    room.receive("a", encode_update(first))
    snapshot = room.doc.get_update()
    with pytest.raises(ProtocolError):
        room.receive("a", encode_update(forged))
    assert room.doc.get_update() == snapshot


def test_the_integrated_part_of_a_rejected_update_is_shared_not_hidden() -> None:
    # pycrdt integrates an update client by client; the part integrated before the failure
    # cannot be taken back, so it must reach the others and the store like any edit (every
    # replica agrees), while the sender is still refused.
    room = Room()
    room.connect("a", can_edit=True)
    first, forged = _forged_history()
    room.receive("a", encode_update(first))
    valid: Doc[Any] = Doc(client_id=2**52)  # integrated before client 77
    valid.get("assets", type=Map)["smuggled"] = 1
    out = room.receive("a", encode_update(merge_updates(valid.get_update(), forged)))
    assert isinstance(out.error, ProtocolError)
    assert out.update is not None and out.broadcast is not None
    replica: Doc[Any] = Doc()
    replica.apply_update(first)
    replica.apply_update(out.update)
    assert replica.get("assets", type=Map).to_py() == room.doc.get("assets", type=Map).to_py()
    assert "smuggled" in room.doc.get("assets", type=Map)

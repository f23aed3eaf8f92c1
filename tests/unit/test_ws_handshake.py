"""Reading the websocket upgrade request head, and answering it."""

from __future__ import annotations

import base64
import gc
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.ws.handshake import (
    HEAD_BYTES_MAX,
    HeadTooLarge,
    Join,
    UpgradeHead,
    UpgradeRequestReader,
    _read_join,
    accept,
    query_params,
    read_join,
)

HEAD = (
    b"GET /ws/abc?token=t HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
FRAME = b"\x82\x84abcd" + bytes(b ^ m for b, m in zip(b"\x00\x00\x01\x00", b"abcd", strict=True))


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting frees anything while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_the_head_is_read_in_chunks_and_what_follows_is_kept() -> None:
    reader = UpgradeRequestReader()
    reader.feed(HEAD[:20])
    assert reader.head is None
    reader.feed(HEAD[20:] + FRAME)
    assert reader.head is not None
    assert reader.head.url == b"/ws/abc?token=t"
    assert reader.head.request().path == "/ws/abc?token=t"
    assert reader.head.request().headers["Sec-WebSocket-Version"] == "13"
    assert reader.rest == FRAME
    with pytest.raises(ValueError, match="already read"):
        reader.feed(b"more")


def test_a_malformed_head_is_a_value_error() -> None:
    reader = UpgradeRequestReader()
    with pytest.raises(ValueError, match="malformed upgrade request"):
        reader.feed(b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(ValueError):
        reader.feed(HEAD)  # nothing more is read after a failure


def test_a_head_that_does_not_end_within_the_limit_is_refused() -> None:
    # Fed a header line at a time, as a slow client would: refused once past the limit.
    reader = UpgradeRequestReader()
    reader.feed(b"GET /ws/abc HTTP/1.1\r\nHost: h\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    with pytest.raises(HeadTooLarge):
        for _ in range(HEAD_BYTES_MAX // len(line) + 2):
            reader.feed(line)
    assert reader.head is None
    # Whole in one chunk, too long: refused as well; frames after a head do not count.
    long_head = HEAD.replace(b"\r\n\r\n", b"\r\nX-Filler: " + b"a" * HEAD_BYTES_MAX + b"\r\n\r\n")
    with pytest.raises(HeadTooLarge):
        UpgradeRequestReader().feed(long_head)
    reader = UpgradeRequestReader()
    reader.feed(HEAD + b"\x82" * (2 * HEAD_BYTES_MAX))
    assert reader.head is not None


def _readers_left_in_cycles() -> int:
    """How many readers only the cycle collector could free (found, kept aside, counted)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(isinstance(o, UpgradeRequestReader) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.usefixtures("no_cycle_collector")
def test_a_reader_is_freed_without_the_cycle_collector() -> None:
    # Its parser holds it (the callbacks): once the head is read (or found malformed) the
    # reader lets the parser go, so a join storm leaves no garbage cycles behind.
    reader = UpgradeRequestReader()
    reader.feed(HEAD)
    assert reader.head is not None
    del reader
    assert _readers_left_in_cycles() == 0

    broken = UpgradeRequestReader()
    with pytest.raises(ValueError):
        broken.feed(b"NOT HTTP AT ALL\r\n\r\n")
    del broken
    assert _readers_left_in_cycles() == 0

    # A client that leaves halfway through its head: closed, the reader goes too; left
    # open, it would stay in a cycle with its parser (which the check does see).
    for close in (True, False):
        unfinished = UpgradeRequestReader()
        unfinished.feed(HEAD[:20])
        if close:
            unfinished.close()
        del unfinished
        assert _readers_left_in_cycles() == (0 if close else 1)


def _head(head: bytes) -> UpgradeHead:
    reader = UpgradeRequestReader()
    reader.feed(head)
    assert reader.head is not None
    return reader.head


def _read(head: bytes) -> Request:
    return _head(head).request()


def test_a_valid_request_is_answered_as_websockets_would_without_the_date() -> None:
    request = _read(HEAD)
    ours = accept(ServerProtocol(state=State.OPEN), request)
    theirs = ServerProtocol(state=State.OPEN).accept(request)
    assert isinstance(ours, bytes) and ours.endswith(b"\r\n\r\n")
    del theirs.headers["Date"]
    assert ours == theirs.serialize()
    # RFC 6455's own example key and answer.
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in ours


def test_negotiated_compression_is_in_the_answer() -> None:
    offer = HEAD.replace(
        b"\r\n\r\n",
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    )
    ws = ServerProtocol(state=State.OPEN, extensions=[ServerPerMessageDeflateFactory()])
    ours = accept(ws, _read(offer))
    assert isinstance(ours, bytes)
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate" in ours
    assert [type(e).__name__ for e in ws.extensions] == ["PerMessageDeflate"]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (HEAD.replace(b"Version: 13", b"Version: 8"), 400),
        (HEAD.replace(b"Upgrade: websocket\r\n", b""), 426),
        (HEAD.replace(b"GET ", b"POST "), 405),
        (HEAD.replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1), 505),
    ],
)
def test_an_invalid_request_gets_websockets_refusal(head: bytes, status: int) -> None:
    refusal = accept(ServerProtocol(state=State.OPEN), _read(head))
    assert isinstance(refusal, Response)
    assert refusal.status_code == status


# -- the usual upgrade, checked without websockets' Request -------------------------------

PID = "f9bf5576-461d-43e0-b9f6-e3f1f7977fdd"
JOIN = HEAD.replace(b"/ws/abc?token=t", f"/ws/{PID}?token=t.o-k_en&saved=1".encode())


def _variants() -> list[bytes]:
    """The usual join, and the ways a head can differ from it (valid or not)."""
    key = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    edits = [
        (b"", b""),
        (b"Connection: Upgrade", b"connection: upgrade"),  # names and values in any case
        (b"Upgrade: websocket", b"UPGRADE: WebSocket"),
        (b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
        (b"Connection: Upgrade", b"Connection: keep-alive"),
        (b"Connection: Upgrade", b"Connection: Upgrade\r\nConnection: keep-alive"),
        (b"Connection: Upgrade\r\n", b""),
        (b"Upgrade: websocket\r\n", b""),
        (b"Upgrade: websocket", b"Upgrade: websocket, h2c"),
        (b"Upgrade: websocket", b"Upgrade: h2c"),
        (key, b""),
        (key, key + key),
        (key, b"Sec-WebSocket-Key: not base64!\r\n"),
        (key, b"Sec-WebSocket-Key: c2hvcnQ=\r\n"),  # base64, but not 16 bytes
        (key, b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"),  # unpadded
        (b"Version: 13", b"Version: 8"),
        (b"Sec-WebSocket-Version: 13\r\n", b""),
        (b"Version: 13", b"Version: 13\r\nSec-WebSocket-Version: 13"),
        (b"GET ", b"POST "),
        (b"HTTP/1.1\r\n", b"HTTP/1.0\r\n"),
        (b"Host: example", b"Host: example\r\nOrigin: https://app.example.com"),
        (b"Host: example", b"Host: example\r\nOrigin: https://evil.example"),
        (b"Host: example", b"Host: example\r\nOrigin: http://example"),  # its own page
        (b"Host: example", b"Host: example\r\nOrigin: a\r\nOrigin: b"),
        (b"Host: example", b"Host: example\r\nAuthorization: Bearer t.o-k_en"),
        (b"Host: example", b"Host: example\r\nAuthorization: Bearer x\r\nAuthorization: Basic y"),
        (b"Host: example", b"Host: example\r\nSec-WebSocket-Protocol: chat"),
        (b"Host: example", b"Host: example\r\nSec-WebSocket-Protocol: ,,"),
        (b"Host: example", b"Host: example\r\nSec-WebSocket-Extensions: permessage-deflate"),
        (b"Host: example", b"Host: example\r\nSec-WebSocket-Extensions: ;;"),
        (b"Host: example\r\n", b""),
        (b"Host: example", b"Host: a\r\nHost: b"),
        (b"token=t.o-k_en", b"token=t%2Eo&token=&x"),
        (f"/ws/{PID}".encode(), b"/ws/"),
        (f"/ws/{PID}".encode(), b"/other"),
        (f"/ws/{PID}".encode(), f"/ws/{PID}/x".encode()),
        (f"/ws/{PID}".encode(), b"/ws/a%2Fb"),
    ]
    return [JOIN.replace(old, new, 1) for old, new in edits]


def _protocol(*, deflate: bool) -> ServerProtocol:
    extensions = [ServerPerMessageDeflateFactory()] if deflate else None
    return ServerProtocol(state=State.OPEN, extensions=extensions)


def _outcome(answer: Join | Response, ws: ServerProtocol) -> object:
    if isinstance(answer, Response):
        headers = list(answer.headers.raw_items())
        return (answer.status_code, answer.reason_phrase, headers, answer.body)
    return (
        answer.response,
        answer.project,
        answer.params,
        answer.authorizations,
        ws.origin,
        [type(e) for e in ws.extensions],
        ws.subprotocol,
    )


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("origins", [frozenset(), frozenset({"https://app.example.com"})])
@pytest.mark.parametrize("raw", _variants())
def test_every_head_is_answered_as_through_websockets_request(
    raw: bytes, origins: frozenset[str], deflate: bool
) -> None:
    head = _head(raw)
    ours = _protocol(deflate=deflate)
    theirs = _protocol(deflate=deflate)
    assert _outcome(read_join(ours, head, origins), ours) == _outcome(
        _read_join(theirs, head.request(), origins), theirs
    )


def test_the_usual_join_is_answered_without_websockets_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("websockets' checks ran")

    monkeypatch.setattr(ServerProtocol, "process_request", refuse)
    monkeypatch.setattr(UpgradeHead, "request", refuse)
    for raw in (JOIN, JOIN.replace(b"Host: example", b"Host: example\r\nOrigin: http://x")):
        join = read_join(_protocol(deflate=False), _head(raw), frozenset())
        assert isinstance(join, Join)
        assert join.response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in join.response
        assert join.params == {"token": ["t.o-k_en"], "saved": ["1"]}
    # A browser offering compression to a server that has it off: nothing to negotiate.
    offer = JOIN.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    assert isinstance(read_join(_protocol(deflate=False), _head(offer), frozenset()), Join)


def test_a_head_split_anywhere_reads_the_same() -> None:
    whole = _head(JOIN)
    for cut in range(1, len(JOIN)):
        reader = UpgradeRequestReader()
        reader.feed(JOIN[:cut])
        assert reader.head is None
        reader.feed(JOIN[cut:] + FRAME)
        assert reader.head is not None
        assert (reader.head.url, reader.head.headers) == (whole.url, whole.headers)
        assert reader.rest == FRAME


_QUERY_TEXT = st.text(alphabet="ab=&%+2F;. é", max_size=20)


@given(_QUERY_TEXT)
def test_query_params_are_parse_qs(query: str) -> None:
    assert query_params(query) == parse_qs(query)


_KEY_TEXT = st.one_of(
    st.binary(max_size=20).map(base64.b64encode),
    st.text(alphabet="AQgw09+/=-_ !\t", max_size=30).map(str.encode),
)


@given(_KEY_TEXT, st.integers(min_value=0, max_value=3))
def test_any_key_is_answered_as_through_websockets_request(key: bytes, strip: int) -> None:
    # Padding dropped, or the key cut short: what websockets refuses, the quick path refuses.
    key = key[: len(key) - strip] if strip < len(key) else key
    raw = JOIN.replace(b"dGhlIHNhbXBsZSBub25jZQ==", key, 1)
    head = _head(raw)
    ours, theirs = _protocol(deflate=False), _protocol(deflate=False)
    assert _outcome(read_join(ours, head, frozenset()), ours) == _outcome(
        _read_join(theirs, head.request(), frozenset()), theirs
    )

"""Reading the websocket upgrade request head, and answering it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.ws.handshake import UpgradeRequestReader, accept

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
    assert reader.request is None
    reader.feed(HEAD[20:] + FRAME)
    assert reader.request is not None
    assert reader.request.path == "/ws/abc?token=t"
    assert reader.request.headers["Sec-WebSocket-Version"] == "13"
    assert reader.rest == FRAME
    with pytest.raises(ValueError, match="already read"):
        reader.feed(b"more")


def test_a_malformed_head_is_a_value_error() -> None:
    reader = UpgradeRequestReader()
    with pytest.raises(ValueError, match="malformed upgrade request"):
        reader.feed(b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(ValueError):
        reader.feed(HEAD)  # nothing more is read after a failure


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
    assert reader.request is not None
    request = weakref.ref(reader.request)
    del reader
    assert request() is None  # freed at once, by reference counting

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


def _read(head: bytes) -> Request:
    reader = UpgradeRequestReader()
    reader.feed(head)
    assert reader.request is not None
    return reader.request


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

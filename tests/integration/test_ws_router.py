"""Routing a connection by its first request: joins straight to the websocket protocol,
everything else to uvicorn's HTTP protocol, as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.ws import JoinRouter, WebSocketConnection
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.transport import RecordingTransport
from tests.support.yclient import eventually

_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def _upgrade(port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def test_a_join_that_arrives_a_few_bytes_at_a_time_is_admitted(
    server: RunningServer,
) -> None:
    pid = await server.create_project("alice")
    request = _upgrade(server.port, f"/ws/{pid}?token={server.token('alice')}")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for piece in (request[:1], request[1:3], request[3:6], request[6:9], request[9:]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.02)  # each piece its own segment, read on its own
    assert (await _head(reader)).startswith(b"HTTP/1.1 101 ")
    # The greeting follows: a binary frame holding the server's sync step 1.
    frame = await asyncio.wait_for(reader.readexactly(4), 10)
    assert frame[0] == 0x82 and frame[2:4] == b"\x00\x00"
    writer.close()


async def test_a_plain_get_of_a_join_path_is_told_to_upgrade(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET /ws/{pid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await _head(reader)
    assert head.startswith(b"HTTP/1.1 426 "), head
    writer.close()


async def test_http_requests_and_a_later_upgrade_on_the_same_connection(
    server: RunningServer,
) -> None:
    pid = await server.create_project("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # Split inside "GET /": too short to tell the request apart from a join at first.
    for piece in (b"GE", b"T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.02)
    head = await _head(reader)
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    # A kept-alive HTTP connection may still upgrade: uvicorn hands it over, as it always did.
    writer.write(_upgrade(server.port, f"/ws/{pid}?token={server.token('alice')}"))
    assert (await _head(reader)).startswith(b"HTTP/1.1 101 ")
    writer.close()


async def test_a_connection_that_sent_nothing_is_closed_on_shutdown(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    async with run_server(settings) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET")  # not enough to route it yet
        await writer.drain()
        connections = server.server.server_state.connections
        await eventually(
            lambda: any(getattr(c, "_head", b"") == b"GET" for c in connections)  # read
        )
    # run_server waited for the graceful shutdown, which closed the connection.
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


class _Transport(RecordingTransport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


def _routed(server: RunningServer, chunks: list[bytes]) -> asyncio.BaseProtocol | None:
    uv = server.server
    router = JoinRouter(config=uv.config, server_state=uv.server_state, app_state=uv.lifespan.state)
    transport = _Transport()
    router.connection_made(transport)
    for chunk in chunks:
        router.data_received(chunk)
    # Gone again, or the server's shutdown would wait for these connections to close.
    routed = transport.protocol
    (routed if isinstance(routed, asyncio.Protocol) else router).connection_lost(None)
    return routed


async def test_joins_skip_uvicorns_http_protocol_and_other_requests_do_not(
    server: RunningServer,
) -> None:
    pid = await server.create_project("alice")
    join = _upgrade(server.port, f"/ws/{pid}?token={server.token('alice')}")
    assert isinstance(_routed(server, [join]), WebSocketConnection)
    assert isinstance(_routed(server, [join[:2], join[2:7], join[7:]]), WebSocketConnection)
    assert _routed(server, [join[:7]]) is None  # "GET /ws" could still be "GET /wsx"
    for other in (b"GET /healthz HTTP/1.1\r\n\r\n", b"POST /ws/x HTTP/1.1\r\n\r\n", b"GET /wsx"):
        routed = _routed(server, [other])
        assert routed is not None and not isinstance(routed, WebSocketConnection), other

"""The websocket transport itself: upgrades, fragments, compression, pings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import websockets
from pycrdt import Doc, Map
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from crdt.protocol import encode_sync_step1, encode_update
from server.close_codes import CloseCode
from server.ws.connection import WebSocketConnection
from server.ws.handshake import HEAD_BYTES_MAX
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.transport import RecordingTransport, upgrade_request
from tests.support.yclient import YClient, eventually


async def _raw_upgrade(port: int, path: str, version: str = "13") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: {version}\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    return head


async def test_upgrade_elsewhere_than_ws_project_is_404(server: RunningServer) -> None:
    for path in ("/elsewhere", "/ws/", "/ws/a/b"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=10)
        assert refused.value.response.status_code == 404, path


async def test_unsupported_websocket_version_is_refused(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    head = await _raw_upgrade(server.port, f"/ws/{pid}?token={server.token('alice')}", "8")
    assert head.startswith(b"HTTP/1.1 400 "), head
    ok = await _raw_upgrade(server.port, f"/ws/{pid}?token={server.token('alice')}")
    assert ok.startswith(b"HTTP/1.1 101 "), ok


async def test_fragmented_message_is_reassembled(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    b = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await b.wait_synced()
    doc = Doc()
    with doc.transaction():
        doc.get("assets", type=Map)["clip"] = "x" * 5000
    frame = encode_update(doc.get_update())
    # An iterable is sent as one message in several frames (opcode, then continuations).
    await a.ws.send([frame[i : i + 1000] for i in range(0, len(frame), 1000)])
    await eventually(lambda: b.doc.get("assets", type=Map).get("clip") == "x" * 5000)
    for c in (a, b):
        await c.close()


async def test_permessage_deflate_when_enabled(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, ws_per_message_deflate=True)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        a = await YClient(server.ws_url(pid, "alice")).connect()
        b = await YClient(server.ws_url(pid, "alice")).connect()
        await a.wait_synced()
        await b.wait_synced()
        names = [type(e).__name__ for e in b.ws.protocol.extensions]
        assert names == ["PerMessageDeflate"]
        await a.edit(lambda d: d.get("assets", type=Map).__setitem__("k", "v" * 3000))
        await eventually(lambda: b.doc.get("assets", type=Map).get("k") == "v" * 3000)
        for c in (a, b):
            await c.close()


async def test_server_pings_quiet_connections(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, ws_ping_interval_s=0.2)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        # A sans-I/O client over a plain socket, to see every frame the server sends.
        client = ClientProtocol(parse_uri(server.ws_url(pid, "alice")))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        client.send_request(client.connect())
        writer.write(b"".join(client.data_to_send()))
        pings = 0
        async with asyncio.timeout(10):
            while pings < 2:
                client.receive_data(await reader.read(65536))
                for event in client.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.PING:
                        pings += 1
                writer.write(b"".join(client.data_to_send()))  # the pongs
        assert client.state is State.OPEN
        writer.close()


async def test_what_a_client_sends_before_admission_is_capped(
    tmp_path: Path, database_url: str
) -> None:
    """The socket opens before the membership check; a client that floods it meanwhile is
    closed (4529) instead of buffered."""
    settings = make_settings(tmp_path, database_url=database_url)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        # Not live (creating the project loaded its room), so joining needs the database.
        await eventually(lambda: server.services.rooms.get(pid) is None)
        blocker = await asyncpg.connect(database_url)
        try:
            # Hold the membership table, so that the membership check waits.
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE project_members IN ACCESS EXCLUSIVE MODE")
            patient = await YClient(server.ws_url(pid, "alice")).connect()  # sends step 1
            flood = await YClient(server.ws_url(pid, "alice")).connect(handshake=False)
            for _ in range(100):
                await flood.send(encode_sync_step1(b"\x00"))
            assert await flood.wait_closed() == CloseCode.RATE_LIMITED
            assert not patient.synced.is_set()  # nothing before admission
            await lock.rollback()
        finally:
            await blocker.close()
        await patient.wait_synced()  # admitted once the check could run, and answered
        await patient.close()


def _connection(server: RunningServer) -> tuple[WebSocketConnection, RecordingTransport]:
    uv = server.server
    conn = WebSocketConnection(
        config=uv.config, server_state=uv.server_state, app_state=uv.lifespan.state
    )
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport


async def test_a_live_room_greets_a_joiner_in_the_write_of_the_101(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.add_member("alice", pid, "bob", "viewer")
    keeper = await YClient(server.ws_url(pid, "alice")).connect()
    await keeper.wait_synced()  # the room is live and knows its members
    conn, transport = _connection(server)
    try:
        # Handled within data_received, and written at the end of the event loop's turn.
        conn.data_received(upgrade_request(server.ws_url(pid, "bob")))
        assert transport.writes == []
        await asyncio.sleep(0)
        assert len(transport.writes) == 1
        head, _, frames = transport.writes[0].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert frames.startswith(b"\x82") and frames[2:4] == b"\x00\x00"  # our sync step 1
    finally:
        conn.connection_lost(None)

    # A cold room: the 101 at the end of the turn, the greeting only once the room is open.
    other = await server.create_project("alice")
    await eventually(lambda: server.services.rooms.get(other) is None)
    conn, transport = _connection(server)
    try:
        conn.data_received(upgrade_request(server.ws_url(other, "alice")))
        await asyncio.sleep(0)
        assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 101 ")
        assert transport.writes[0].endswith(b"\r\n\r\n")
        await eventually(lambda: len(transport.writes) == 2)
        assert transport.writes[1][2:4] == b"\x00\x00"
    finally:
        conn.connection_lost(None)
    await keeper.close()


def _close_code(write: bytes) -> int:
    """The code of the (unmasked) close frame a write starts with."""
    assert write[0] == 0x88, write[:8]
    return int.from_bytes(write[2:4], "big")


async def test_joins_of_a_cold_room_are_admitted_when_it_opens(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.add_member("alice", pid, "bob", "viewer")
    await eventually(lambda: len(server.services.rooms) == 0)  # unloaded, not just unloading
    tasks = server.server.server_state.tasks
    tasks_before = len(tasks)
    joins = {user: _connection(server) for user in ("alice", "bob", "mallory")}
    try:
        for user, (conn, _) in joins.items():
            conn.data_received(upgrade_request(server.ws_url(pid, user)))
        # One load for the room; no task per connection.
        assert len(tasks) == tasks_before
        await asyncio.sleep(0)  # the end of the turn, when the 101s are written
        for _, transport in joins.values():
            assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 101 ")
        await eventually(lambda: all(len(t.writes) == 2 for _, t in joins.values()))
        for user in ("alice", "bob"):
            assert joins[user][1].writes[1][2:4] == b"\x00\x00"  # greeted: our sync step 1
        assert _close_code(joins["mallory"][1].writes[1]) == CloseCode.NOT_A_MEMBER
        live = server.services.rooms.get(pid)
        assert live is not None and {p.user_id for p in live.peers} == {"alice", "bob"}
    finally:
        for conn, _ in joins.values():
            conn.connection_lost(None)

    # Opened for a non-member first: not opened for anyone; the others ask the database.
    other = await server.create_project("alice")
    await eventually(lambda: len(server.services.rooms) == 0)
    joins = {user: _connection(server) for user in ("mallory", "alice")}
    try:
        for user, (conn, _) in joins.items():
            conn.data_received(upgrade_request(server.ws_url(other, user)))
        await eventually(lambda: all(len(t.writes) == 2 for _, t in joins.values()))
        assert _close_code(joins["mallory"][1].writes[1]) == CloseCode.NOT_A_MEMBER
        assert joins["alice"][1].writes[1][2:4] == b"\x00\x00"
    finally:
        for conn, _ in joins.values():
            conn.connection_lost(None)


async def test_live_room_refusals_keep_their_close_codes(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    keeper = await YClient(server.ws_url(pid, "alice")).connect()
    await keeper.wait_synced()
    outsider = await YClient(server.ws_url(pid, "mallory")).connect(handshake=False)
    assert await outsider.wait_closed() == CloseCode.NOT_A_MEMBER
    forged = server.ws_url(pid, token="not-a-token")
    anonymous = await YClient(forged).connect(handshake=False)
    assert await anonymous.wait_closed() == CloseCode.NOT_AUTHENTICATED
    await keeper.close()


async def test_frames_of_one_turn_go_out_in_one_write_before_a_close(
    server: RunningServer,
) -> None:
    pid = await server.create_project("alice")
    keeper = await YClient(server.ws_url(pid, "alice")).connect()
    await keeper.wait_synced()
    conn, transport = _connection(server)
    try:
        conn.data_received(upgrade_request(server.ws_url(pid, "alice")))
        await eventually(lambda: conn.live is not None)
        await asyncio.sleep(0)
        transport.writes.clear()
        frames = [encode_sync_step1(bytes([0])), b"\x01\x00", b"\x02\x01\x07"]
        for frame in frames:
            assert conn.send(frame)
        assert transport.writes == []  # gathered until the end of this turn
        await asyncio.sleep(0)
        wire = [Frame(Opcode.BINARY, f).serialize(mask=False) for f in frames]
        assert transport.writes == [b"".join(wire)]

        # A close goes out behind what was gathered before it, never ahead.
        transport.writes.clear()
        assert conn.send(frames[0])
        conn.close_with(CloseCode.NOT_A_MEMBER, "access removed")
        assert transport.writes[0] == wire[0]
        assert _close_code(transport.writes[1]) == CloseCode.NOT_A_MEMBER
        await asyncio.sleep(0)
        assert len(transport.writes) == 2  # nothing written twice
    finally:
        conn.connection_lost(None)
        await keeper.close()


async def test_an_endless_upgrade_head_is_answered_431(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        # A head past the limit that does not end; nothing more is sent, so the server has
        # read everything when it closes (unread bytes would turn its close into a reset).
        writer.write(
            f"GET /ws/{pid}?token={server.token('alice')} HTTP/1.1\r\nHost: h\r\n".encode()
            + line * (HEAD_BYTES_MAX // len(line) + 2)
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 431 "), head
        await asyncio.wait_for(reader.read(), 10)  # the rest of the answer, then the close
    finally:
        writer.close()


async def test_a_message_too_big_is_closed_cleanly_while_the_client_still_sends_it(
    tmp_path: Path, database_url: str
) -> None:
    """The server fails the connection on the frame's header, with megabytes still to come.
    The client must read the 4413 close frame and then an end of stream, not a reset (which
    the official client reports as 1006 and retries)."""
    settings = make_settings(tmp_path, database_url=database_url, message_bytes_max=64 * 1024)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        client = ClientProtocol(parse_uri(server.ws_url(pid, "alice")))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            client.send_request(client.connect())
            writer.write(b"".join(client.data_to_send()))
            async with asyncio.timeout(10):
                while client.state is not State.OPEN:
                    client.receive_data(await reader.read(65536))
                # Far more than the socket buffers hold: the server has unread bytes when it
                # decides, and the write below only completes if the server keeps reading.
                writer.write(Frame(Opcode.BINARY, b"\x00" * (8 << 20)).serialize(mask=True))
                await writer.drain()
                while data := await reader.read(65536):
                    client.receive_data(data)
        finally:
            writer.close()
        assert client.close_rcvd is not None
        assert client.close_rcvd.code == CloseCode.MESSAGE_TOO_BIG

"""A client over its rate limits is slowed, not cut off: what it sends beyond them waits, in
order, and is handled as the limits refill while its socket is not read; only one that stays
over them for ``conn_throttle_close_s`` is closed (4529). Small limits keep these quick."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pycrdt import Doc, Map
from websockets.frames import Frame, Opcode

from crdt.protocol import encode_sync_step1, encode_update
from server.close_codes import CloseCode
from server.ws.connection import Phase, WebSocketConnection
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.transport import RecordingTransport, client_frame, upgrade_request
from tests.support.yclient import YClient, eventually


def _connection_of(server: RunningServer, user_id: str) -> WebSocketConnection:
    found = [c for c in server.services.idle.connections if c.user_id == user_id]
    assert len(found) == 1
    conn = found[0]
    assert isinstance(conn, WebSocketConnection)
    return conn


async def _flood(client: YClient, messages: int, per_s: float) -> None:
    """``messages`` edits (one key each) at ``per_s``, in batches of a tenth of a second."""
    batch = max(1, int(per_s / 10))
    for first in range(0, messages, batch):
        for i in range(first, min(first + batch, messages)):
            await client.edit(lambda d, i=i: d.get("flood", type=Map).__setitem__(f"k{i}", i))
        await asyncio.sleep(0.1)  # pacing the sender, not waiting for the server


def _keys(doc: Doc, name: str = "flood") -> int:
    return len(doc.get(name, type=Map))


async def test_a_client_at_five_times_its_limit_is_slowed_and_loses_nothing(
    tmp_path: Path, database_url: str
) -> None:
    # 100 messages/s with a burst of 800; 5x that for 3 s is 1500 messages: drained by
    # about 7 s, throttled for about 5 of them, inside the default 10 s before a close.
    settings = make_settings(
        tmp_path, database_url=database_url, conn_messages_per_s=100, conn_messages_burst=800
    )
    assert settings.conn_throttle_close_s == 10
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        for user in ("fred", "tom"):
            await server.add_member("alice", pid, user, "editor")
        observer = await YClient(server.ws_url(pid, "alice")).connect()
        flooder = await YClient(server.ws_url(pid, "fred")).connect()
        talker = await YClient(server.ws_url(pid, "tom")).connect()
        for client in (observer, flooder, talker):
            await client.wait_synced()
        conn = _connection_of(server, "fred")

        await _flood(flooder, 1500, per_s=500)
        assert conn.limit.stretches > 0  # it was slowed...
        assert flooder.close_code is None  # ...not closed
        # Others in the room are not held up behind it: an edit made now reaches the
        # observer before the flooder's backlog has.
        await talker.edit(lambda d: d.get("talk", type=Map).__setitem__("hello", 1))
        await eventually(lambda: "hello" in observer.doc.get("talk", type=Map))
        assert _keys(observer.doc) < 1500

        # Everything it sent is applied, broadcast and stored.
        await eventually(lambda: _keys(observer.doc) == 1500, timeout=30)
        assert flooder.close_code is None
        live = server.services.rooms.get(pid)
        assert live is not None
        assert _keys(live.room.doc) == 1500
        await live.flush()
        stored = Doc()
        for update in await server.services.store.load(pid):
            stored.apply_update(update)
        assert dict(stored.get("flood", type=Map)) == {f"k{i}": i for i in range(1500)}
        for client in (observer, flooder, talker):
            await client.close()


async def test_a_client_over_its_limit_for_longer_than_the_interval_is_closed(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        conn_messages_per_s=50,
        conn_messages_burst=50,
        conn_throttle_close_s=1,
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        observer = await YClient(server.ws_url(pid, "alice")).connect()
        flooder = await YClient(server.ws_url(pid, "alice")).connect()
        await observer.wait_synced()
        await flooder.wait_synced()
        sender = asyncio.create_task(_flood(flooder, 1500, per_s=250))  # 5x for up to 6 s
        assert await flooder.wait_closed(timeout=20) == CloseCode.RATE_LIMITED
        assert "too long" in flooder.close_reason
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        # What it sent before it was closed reached the others; they stay connected.
        assert _keys(observer.doc) > 50
        assert observer.close_code is None
        await observer.close()


async def test_a_paused_client_is_not_idle_and_its_early_messages_wait(
    tmp_path: Path, database_url: str
) -> None:
    """Reading paused for seconds, longer than the idle timeout: not closed as idle, since
    it has more to send; once drained and then silent, it is."""
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        conn_messages_per_s=10,
        conn_messages_burst=10,
        idle_timeout_s=0.5,
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        client = await YClient(server.ws_url(pid, "alice")).connect(handshake=False)
        # Before admission (these wait in the early queue), then 40 edits at once: about
        # four seconds of debt at 10 messages/s.
        await client.send(encode_sync_step1(client.doc.get_state()))
        for i in range(40):
            await client.edit(lambda d, i=i: d.get("flood", type=Map).__setitem__(f"k{i}", i))
        await client.wait_synced()
        await eventually(lambda: server.services.rooms.get(pid) is not None)
        live = server.services.rooms.get(pid)
        assert live is not None
        conn = _connection_of(server, "alice")
        await eventually(lambda: conn.busy)  # paused
        await eventually(lambda: _keys(live.room.doc) == 40, timeout=20)
        assert client.close_code is None
        assert conn.limit.stretches > 0
        assert await client.wait_closed() == CloseCode.IDLE_TIMEOUT


def _updates(count: int, name: str) -> bytes:
    """``count`` edits of one client, each a masked frame, in one chunk."""
    doc = Doc()
    frames = []
    for i in range(count):
        before = doc.get_state()
        doc.get(name, type=Map)[f"k{i}"] = i
        frames.append(client_frame(encode_update(doc.get_update(before))))
    return b"".join(frames)


async def test_messages_over_the_limit_wait_in_order_while_the_socket_is_not_read(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url=database_url, conn_messages_per_s=10, conn_messages_burst=5
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        keeper = await YClient(server.ws_url(pid, "alice")).connect()
        await keeper.wait_synced()  # live: the joins below are admitted in the handshake
        live = server.services.rooms.get(pid)
        assert live is not None
        uv = server.server
        for ending in ("drained", "server closes", "client closes", "client gone"):
            conn = WebSocketConnection(
                config=uv.config, server_state=uv.server_state, app_state=uv.lifespan.state
            )
            transport = RecordingTransport()
            conn.connection_made(transport)
            try:
                conn.data_received(upgrade_request(server.ws_url(pid, "alice")))
                assert conn.phase is Phase.JOINED
                conn.data_received(_updates(8, ending))  # 3 over a burst of 5
                assert _keys(live.room.doc, ending) == 5  # the burst's worth at once
                assert not transport.reading and conn.busy  # the other 3 wait
                if ending == "drained":
                    # Handled as the limit refills (10/s), in order; then read again.
                    await eventually(lambda t=transport: t.reading)
                    assert _keys(live.room.doc, ending) == 8
                    assert not conn.busy and conn.limit.stretches == 1
                elif ending == "server closes":
                    conn.close_with(CloseCode.NORMAL, "bye")
                    assert transport.reading  # to read the client's answer
                    assert not conn.busy and _keys(live.room.doc, ending) == 5  # dropped
                elif ending == "client closes":
                    # What it sent before its close frame is all handled.
                    conn.data_received(Frame(Opcode.CLOSE, b"\x03\xe8").serialize(mask=True))
                    assert _keys(live.room.doc, ending) == 8
                else:
                    conn.connection_lost(None)
                    assert _keys(live.room.doc, ending) == 8
            finally:
                conn.connection_lost(None)
        await keeper.close()

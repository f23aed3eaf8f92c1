"""Keep-alive pings must not kill a connection that is still receiving a large document."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import websockets
from pycrdt import Map

from server.close_codes import CloseCode
from tests.conftest import make_settings
from tests.support.server import run_server
from tests.support.throttle import ThrottlingProxy
from tests.support.yclient import YClient, eventually


async def test_large_document_over_a_slow_link_survives_pings(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, ws_ping_interval_s=0.2)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        blob = os.urandom(512 * 1024).hex()  # 1 MiB of text per entry
        await server.services.rooms.edit(
            pid,
            lambda d: [d.get("assets", type=Map).__setitem__(f"a{i}", blob) for i in range(4)],
        )
        # 4 MiB at 1 MiB/s: the transfer takes ~4 s, many ping intervals and timeouts long.
        proxy = await ThrottlingProxy(server.port, bytes_per_s=1024 * 1024).start()
        try:
            url = server.ws_url(pid, "alice").replace(f":{server.port}/", f":{proxy.port}/")
            client = await YClient(url).connect()
            await client.wait_synced(timeout=30)
            assert len(client.doc.get("assets", type=Map)) == 4
            # Still open afterwards: an edit made now reaches the server.
            await client.edit(lambda d: d.get("assets", type=Map).__setitem__("after", "x"))
            live = server.services.rooms.get(pid)
            assert live is not None
            await eventually(lambda: "after" in live.room.doc.get("assets", type=Map))
            assert client.close_code is None
            await client.close()
        finally:
            await proxy.stop()


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_silent_client_is_closed_as_idle(tmp_path: Path, database_url: str) -> None:
    # No pings: a pong is a frame too, and the silent client's websockets library answers them.
    settings = make_settings(tmp_path, database_url=database_url, ws_ping_interval_s=0)
    async with run_server(settings) as server:
        idle = server.services.idle
        assert idle.idle_timeout_s == 60
        # Connections made from now on stamp their activity with this clock; the sweep reads it.
        clock = idle.clock = ManualClock(idle.clock())
        pid = await server.create_project("alice")
        await server.add_member("alice", pid, "bob", "editor")
        talker = await YClient(server.ws_url(pid, "alice")).connect()
        # Sends nothing at all, not even the answer to the server's sync step 1.
        silent = await websockets.connect(server.ws_url(pid, "bob"), open_timeout=10)
        await talker.wait_synced()
        await eventually(lambda: len(idle.connections) == 2)  # both admitted
        [talking] = [c for c in idle.connections if c.user_id == "alice"]
        clock.now += 40
        # The talker renews its presence, as y-websocket clients do every 15 s.
        await talker.set_awareness(1, 1, "{}")
        await eventually(lambda: talking.last_activity_s == clock.now)
        clock.now += 30  # the silent one: 70 s without a frame; the talker: 30 s
        idle.sweep()
        await asyncio.wait_for(silent.wait_closed(), 10)
        assert silent.close_code == CloseCode.IDLE_TIMEOUT
        assert talker.close_code is None
        await talker.close()

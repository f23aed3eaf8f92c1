"""Keep-alive pings must not kill a connection that is still receiving a large document."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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


async def test_silent_client_is_closed_as_idle(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, idle_timeout_s=0.3)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        talker = await YClient(server.ws_url(pid, "alice")).connect()
        silent = await YClient(server.ws_url(pid, "alice")).connect(handshake=False)
        # The talker keeps renewing its presence, as y-websocket clients do every 15 s.
        for clock in range(1, 12):
            await talker.set_awareness(1, clock, "{}")
            await asyncio.sleep(0.1)
            if silent.closed.is_set():
                break
        assert await silent.wait_closed() == CloseCode.IDLE_TIMEOUT
        assert talker.close_code is None
        await talker.close()

"""A server killed with SIGKILL while clients edit loses nothing it reported saved."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pycrdt import Map

from server.auth import mint_token
from tests.support.process import ServerProcess
from tests.support.server import TEST_SECRET
from tests.support.yclient import YClient, covers, eventually


async def _create_project(port: int) -> str:
    import httpx

    headers = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'alice')}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        r = await http.post("/api/projects", json={"title": "crash"})
        assert r.status_code == 201
        pid: str = r.json()["id"]
        return pid


async def test_sigkill_loses_nothing_saved_and_clients_resend_the_rest(
    tmp_path: Path, database_url: str
) -> None:
    server = await ServerProcess(database_url, tmp_path, FLOWAI_GROUP_COMMIT_MS="50").start()
    pid = await _create_project(server.port)
    url = f"ws://127.0.0.1:{server.port}/ws/{pid}?saved=1&token={mint_token(TEST_SECRET, 'alice')}"
    clients = [await YClient(url).connect() for _ in range(3)]
    for c in clients:
        await c.wait_synced()

    async def edit_forever(i: int, c: YClient) -> None:
        n = 0
        while n < 10_000:
            await c.edit(lambda d, n=n: d.get("assets", type=Map).__setitem__(f"c{i}-{n}", n))
            n += 1
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(edit_forever(i, c)) for i, c in enumerate(clients)]
    await eventually(lambda: sum(len(c.saved) for c in clients) >= 30, timeout=30)
    server.kill()
    await server.proc.wait()  # type: ignore[union-attr]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in clients:
        await c.wait_closed()
    durable = [sv for c in clients for sv in c.saved]

    restarted = await ServerProcess(database_url, tmp_path, port=server.port).start()
    try:
        reader = await YClient(url).connect()
        await reader.wait_synced()
        # Every state the server reported as saved survived the SIGKILL.
        state = reader.doc.get_state()
        assert all(covers(state, sv) for sv in durable)
        # The clients reconnect with their documents; what was not yet saved is re-sent.
        again = [await YClient(url, c.doc).connect() for c in clients]
        expected = set().union(*(set(c.doc.get("assets", type=Map).keys()) for c in clients))
        await eventually(
            lambda: set(reader.doc.get("assets", type=Map).keys()) == expected, timeout=30
        )
        for c in [reader, *again]:
            await c.close()
    finally:
        await restarted.stop()

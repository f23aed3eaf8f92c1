"""Three real server processes, one PostgreSQL, one Redis: rooms shared across instances."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pycrdt import Map

from crdt.timeline import read_timeline
from server.auth import mint_token
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.server import TEST_SECRET
from tests.support.yclient import YClient, eventually

FAST = {
    "FLOWAI_FANOUT_HEARTBEAT_S": "0.5",
    "FLOWAI_CONFIRM_TIMEOUT_MS": "2000",
    "FLOWAI_GROUP_COMMIT_MS": "20",
}


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path).start()
    yield server
    await server.stop()


async def _cluster(
    n: int, database_url: str, redis_url: str, tmp_path: Path
) -> list[ServerProcess]:
    procs = [
        ServerProcess(database_url, tmp_path / f"i{i}", FLOWAI_REDIS_URL=redis_url, **FAST)
        for i in range(n)
    ]
    await asyncio.gather(*(p.start() for p in procs))
    return procs


async def _project(port: int) -> str:
    import httpx

    headers = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'alice')}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        r = await http.post("/api/projects", json={"title": "shared"})
        assert r.status_code == 201
        pid: str = r.json()["id"]
        return pid


def _url(port: int, pid: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/{pid}?token={mint_token(TEST_SECRET, 'alice')}"


def _keys(c: YClient) -> set[str]:
    return set(c.doc.get("assets", type=Map).keys())


async def test_clients_on_three_instances_converge_and_each_update_is_stored_once(
    tmp_path: Path, database_url: str, redis_server: RedisServer
) -> None:
    procs = await _cluster(3, database_url, redis_server.url, tmp_path)
    try:
        pid = await _project(procs[0].port)
        clients = [await YClient(_url(p.port, pid)).connect() for p in procs for _ in range(2)]
        for c in clients:
            await c.wait_synced()
        for round_ in range(10):
            await asyncio.gather(
                *(
                    c.edit(
                        lambda d, k=f"k{i}-{round_}": d.get("assets", type=Map).__setitem__(k, 1)
                    )
                    for i, c in enumerate(clients)
                )
            )
        expected = {f"k{i}-{r}" for i in range(len(clients)) for r in range(10)}
        await eventually(lambda: all(_keys(c) == expected for c in clients), timeout=20)
        json0 = read_timeline(clients[0].doc).to_json()
        assert all(read_timeline(c.doc).to_json() == json0 for c in clients)
        # Exactly one stored record per update (plus the project's initial state), even after
        # the confirmation timeout has passed.
        await asyncio.sleep(3)
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetchval(
                "SELECT count(*) FROM doc_updates WHERE project_id = $1", uuid.UUID(pid)
            )
            merged = await conn.fetchval(
                "SELECT coalesce(sum(merged_count), 0) FROM doc_states WHERE project_id = $1",
                uuid.UUID(pid),
            )
        finally:
            await conn.close()
        assert rows + merged == len(expected) + 1
        for c in clients:
            await c.close()
    finally:
        await asyncio.gather(*(p.stop() for p in procs))


async def test_sigkilled_instance_loses_nothing_and_its_presence_goes(
    tmp_path: Path, database_url: str, redis_server: RedisServer
) -> None:
    procs = await _cluster(3, database_url, redis_server.url, tmp_path)
    try:
        pid = await _project(procs[0].port)
        victim = await YClient(_url(procs[0].port, pid)).connect()
        watcher = await YClient(_url(procs[1].port, pid)).connect()
        await victim.wait_synced()
        await watcher.wait_synced()
        await victim.set_awareness(4242, 1, '{"user":"victim"}')
        await eventually(lambda: 4242 in watcher.awareness)
        for i in range(30):
            await victim.edit(lambda d, i=i: d.get("assets", type=Map).__setitem__(f"v{i}", i))
        procs[0].kill()
        await procs[0].proc.wait()  # type: ignore[union-attr]
        # Presence relayed by the dead instance disappears from the others.
        await eventually(lambda: 4242 not in watcher.awareness, timeout=20)
        # The victim's client reconnects elsewhere with its document; nothing is lost.
        again = await YClient(_url(procs[2].port, pid), victim.doc).connect()
        await again.wait_synced()
        expected = {f"v{i}" for i in range(30)}
        await eventually(lambda: _keys(watcher) == expected, timeout=20)
        late = await YClient(_url(procs[1].port, pid)).connect()
        await late.wait_synced()
        assert _keys(late) == expected
        for c in (watcher, again, late):
            await c.close()
    finally:
        await asyncio.gather(*(p.stop() for p in procs[1:]))


async def test_redis_restart_during_editing_then_convergence(
    tmp_path: Path, database_url: str, redis_server: RedisServer
) -> None:
    procs = await _cluster(2, database_url, redis_server.url, tmp_path)
    try:
        pid = await _project(procs[0].port)
        a = await YClient(_url(procs[0].port, pid)).connect()
        b = await YClient(_url(procs[1].port, pid)).connect()
        await a.wait_synced()
        await b.wait_synced()
        await a.edit(lambda d: d.get("assets", type=Map).__setitem__("before", 1))
        await eventually(lambda: "before" in _keys(b))
        await redis_server.stop()
        # Each instance keeps serving its own clients while Redis is down.
        await a.edit(lambda d: d.get("assets", type=Map).__setitem__("during-a", 1))
        await b.edit(lambda d: d.get("assets", type=Map).__setitem__("during-b", 1))
        local = await YClient(_url(procs[0].port, pid)).connect()
        await local.wait_synced()
        await eventually(lambda: "during-a" in _keys(local))
        import httpx

        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{procs[0].port}/readyz")
            assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("unavailable")
        await RedisServer(tmp_path, port=redis_server.port).start()
        expected = {"before", "during-a", "during-b"}
        await eventually(lambda: _keys(a) == expected and _keys(b) == expected, timeout=30)
        for c in (a, b, local):
            await c.close()
    finally:
        await asyncio.gather(*(p.stop() for p in procs))
        # The restarted server shares the fixture's port; the fixture stops the first process.
        import subprocess

        subprocess.run(
            ["redis-cli", "-p", str(redis_server.port), "shutdown", "nosave"], check=False
        )


async def test_serve_with_two_workers_shares_rooms_between_processes(
    tmp_path: Path, database_url: str, redis_server: RedisServer
) -> None:
    proc = ServerProcess(
        database_url, tmp_path, args=("--workers", "2"), FLOWAI_REDIS_URL=redis_server.url, **FAST
    )
    await proc.start()
    try:
        pid = await _project(proc.port)
        # The kernel spreads connections over both workers; with 8 clients both get some.
        clients = [await YClient(_url(proc.port, pid)).connect() for _ in range(8)]
        for i, c in enumerate(clients):
            await c.wait_synced()
            await c.edit(lambda d, i=i: d.get("assets", type=Map).__setitem__(f"w{i}", i))
        expected = {f"w{i}" for i in range(8)}
        await eventually(lambda: all(_keys(c) == expected for c in clients), timeout=20)
        for c in clients:
            await c.close()
    finally:
        await proc.stop()

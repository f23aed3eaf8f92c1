"""Repeated SIGKILLs of ``flowai serve`` while many clients edit several rooms.

``tests/integration/test_crash_recovery.py`` kills once, with three clients in one room. This
variant kills again and again (short mode 2 times, long mode 5), with more clients over two
rooms and a low compaction threshold so kills also land around compactions: recovery from one
crash (a log with duplicates, a compaction cut short) must survive the next. After every
restart, every state the server had reported saved (``?saved=1``) is still there; at the end
the clients reconnect with their documents, re-send what was never saved, and a fresh load of
each room, after it unloaded, holds every edit any client made.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map

from server.auth import mint_token
from tests.support.long_mode import scale
from tests.support.process import ServerProcess, free_port
from tests.support.server import TEST_SECRET
from tests.support.yclient import YClient, covers, eventually

# The long mode runs for minutes; the short mode keeps the project's default limit.
pytestmark = pytest.mark.timeout(scale(120, 1800))

KILLS = scale(2, 5)
ROOMS = 2
CLIENTS_PER_ROOM = scale(3, 8)
SAVED_BEFORE_KILL = scale(15, 40)  # durable acknowledgements per room before each kill
TOKEN = mint_token(TEST_SECRET, "alice")


def _put(doc: Doc[Any], key: str, value: int) -> None:
    doc.get("assets", type=Map)[key] = value


def _keys(doc: Doc[Any]) -> set[str]:
    return set(doc.get("assets", type=Map).keys())


async def _edit_until_killed(name: str, client: YClient, counter: list[int]) -> None:
    for n in range(100_000):
        # The edit lands in the client's document even if the send fails: it is re-sent on
        # reconnect, like y-websocket does.
        await client.edit(lambda d, k=f"{name}-{n}", v=n: _put(d, k, v))
        counter[0] += 1
        await asyncio.sleep(0.002)


class Cluster:
    """The server process, restarted on the same port and database after each kill."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = free_port()
        self.server: ServerProcess | None = None

    async def start(self) -> None:
        self.server = ServerProcess(
            self.database_url,
            self.data_dir,
            port=self.port,
            FLOWAI_GROUP_COMMIT_MS="30",
            FLOWAI_COMPACT_UPDATES_MAX="50",
            FLOWAI_ROOM_UNLOAD_GRACE_MS="200",
            FLOWAI_LOG_LEVEL="ERROR",
        )
        await self.server.start()

    async def kill(self) -> None:
        assert self.server is not None and self.server.proc is not None
        self.server.kill()
        await self.server.proc.wait()

    def url(self, project_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{project_id}?saved=1&token={TOKEN}"


async def test_repeated_sigkill_under_load_loses_nothing(tmp_path: Path, database_url: str) -> None:
    cluster = Cluster(database_url, tmp_path)
    await cluster.start()
    rnd = random.Random(8)
    base = f"http://127.0.0.1:{cluster.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    docs: dict[str, list[Doc[Any]]] = {}
    durable: dict[str, list[bytes]] = {}
    updates = [0]
    editing_s = 0.0
    try:
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            for i in range(ROOMS):
                response = await http.post("/api/projects", json={"title": f"room {i}"})
                assert response.status_code == 201, response.text
                pid = response.json()["id"]
                docs[pid] = [Doc() for _ in range(CLIENTS_PER_ROOM)]
                durable[pid] = []

        for kill in range(KILLS):
            # Clients (re)connect with their documents; each sends what the server lacks.
            clients = {
                pid: [await YClient(cluster.url(pid), doc).connect() for doc in room_docs]
                for pid, room_docs in docs.items()
            }
            everyone = [c for room in clients.values() for c in room]
            for c in everyone:
                await c.wait_synced()
            started = time.monotonic()
            tasks = [
                asyncio.create_task(_edit_until_killed(f"k{kill}r{r}c{i}", c, updates))
                for r, room in enumerate(clients.values())
                for i, c in enumerate(room)
            ]
            rooms = list(clients.values())
            await eventually(
                lambda rooms=rooms: all(
                    sum(len(c.saved) for c in room) >= SAVED_BEFORE_KILL for room in rooms
                ),
                timeout=30,
            )
            await asyncio.sleep(rnd.uniform(0, 0.3))  # land the kill at varied points
            await cluster.kill()
            editing_s += time.monotonic() - started
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for pid, room in clients.items():
                for c in room:
                    await c.wait_closed()
                    durable[pid] += c.saved

            await cluster.start()
            # Nothing the server reported saved, in this run or any before, was lost.
            for pid in docs:
                reader = await YClient(cluster.url(pid)).connect()
                await reader.wait_synced()
                state = reader.doc.get_state()
                lost = [sv for sv in durable[pid] if not covers(state, sv)]
                assert not lost, f"kill {kill + 1}: {len(lost)} saved states lost in {pid}"
                await reader.close()

        # The clients come back once more; every edit any of them made ends up stored.
        clients = {
            pid: [await YClient(cluster.url(pid), doc).connect() for doc in room_docs]
            for pid, room_docs in docs.items()
        }
        expected = {pid: set().union(*(_keys(d) for d in docs[pid])) for pid in docs}
        for pid, room in clients.items():
            await eventually(
                lambda r=room, x=expected[pid]: all(_keys(c.doc) == x for c in r), timeout=30
            )
        for c in [c for room in clients.values() for c in room]:
            await c.close()
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while "flowai_rooms 0.0" not in (await http.get("/metrics")).text:
                assert time.monotonic() < deadline, "rooms did not unload"
                await asyncio.sleep(0.05)
        for pid in docs:
            reader = await YClient(cluster.url(pid)).connect()
            await reader.wait_synced()
            assert _keys(reader.doc) == expected[pid]
            await reader.close()
        total_keys = sum(len(x) for x in expected.values())
        print(
            f"sigkill: {KILLS} kills of the server while {ROOMS * CLIENTS_PER_ROOM} clients in "
            f"{ROOMS} rooms edited ({updates[0]} updates, {updates[0] / editing_s:.0f}/s); "
            f"{total_keys} edits, all stored after the clients reconnected"
        )
    finally:
        if cluster.server is not None and cluster.server.proc is not None:
            if cluster.server.proc.returncode is None:
                await cluster.server.stop()

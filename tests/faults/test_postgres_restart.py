"""PostgreSQL stops for a few seconds while clients edit: rooms keep syncing in memory, /readyz
reports the outage, and once the database is back every accepted edit is stored.

The test runs a PostgreSQL of its own (the binaries of the ``pgserver`` wheel, in tmp_path) so
that stopping it disturbs no other test, and ``flowai serve`` as a subprocess against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pycrdt import Doc, Map

from server.auth import mint_token
from server.close_codes import CloseCode
from tests.support.long_mode import scale
from tests.support.process import ServerProcess
from tests.support.server import TEST_SECRET
from tests.support.yclient import YClient, eventually

# The long mode runs for minutes; the short mode keeps the project's default limit.
pytestmark = pytest.mark.timeout(scale(120, 1800))

CLIENTS_PER_ROOM = scale(3, 8)
ROOMS = 2
EDIT_INTERVAL_S = 0.01  # per client: ~100 updates/s
OUTAGE_S = scale(3.0, 12.0)


class PrivatePostgres:
    """A PostgreSQL server of this test's own, which it can stop and start again."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: pytest makes its root private (0700) whenever a session
        # starts, which would lock out the server's unprivileged user.
        self.pgdata = Path(tempfile.mkdtemp(prefix="flowai-pg-")) / "pgdata"
        self.pgdata.mkdir()
        self._start_args: list[str] = []
        self._user: str | None = None
        self.dsn = ""

    def create(self) -> str:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR
            # is unset (as under CI); it falls back to /tmp.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        # pgserver runs initdb and the server as an unprivileged user when we are root.
        server = get_server(self.pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
        self._user = server.system_user
        self._start_args = ["-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}"]
        self._start_args += ["-l", str(self.pgdata / "log"), "start"]
        self.dsn = server.get_uri()
        return self.dsn

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(args, pgdata=self.pgdata, user=self._user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        self._pg_ctl(self._start_args)

    def destroy(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._pg_ctl(["-w", "-m", "immediate", "stop"])
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


@dataclass
class Editor:
    """A client that keeps adding ``assets`` keys of its own while ``editing`` is set."""

    name: str
    client: YClient
    written: set[str] = field(default_factory=set)

    def keys(self) -> set[str]:
        return set(self.client.doc.get("assets", type=Map).keys())

    async def run(self, editing: asyncio.Event, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set() and n < 100_000:
            await editing.wait()
            if stop.is_set():
                break
            key = f"{self.name}-{n}"
            await self.client.edit(lambda d, k=key, v=n: _put(d, k, v))
            self.written.add(key)
            n += 1
            await asyncio.sleep(EDIT_INTERVAL_S)


def _put(doc: Doc[Any], key: str, value: int) -> None:
    doc.get("assets", type=Map)[key] = value


async def _create_project(http: httpx.AsyncClient, title: str) -> str:
    response = await http.post("/api/projects", json={"title": title})
    assert response.status_code == 201, response.text
    project_id: str = response.json()["id"]
    return project_id


async def _stored_keys(dsn: str, project_id: str) -> set[str]:
    """The ``assets`` keys of the document as stored: compacted state plus the update log."""
    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval(
            "SELECT payload FROM doc_states WHERE project_id = $1::uuid", project_id
        )
        rows = await conn.fetch(
            "SELECT payload FROM doc_updates WHERE project_id = $1::uuid ORDER BY seq", project_id
        )
    finally:
        await conn.close()
    doc: Doc[Any] = Doc()
    for payload in ([state] if state is not None else []) + [r["payload"] for r in rows]:
        doc.apply_update(bytes(payload))
    return set(doc.get("assets", type=Map).keys())


async def _converged(rooms: dict[str, list[Editor]], timeout: float) -> None:
    """Every client of each room holds every key written in that room."""
    for editors in rooms.values():
        expected = set().union(*(e.written for e in editors))
        await eventually(lambda eds=editors, x=expected: all(e.keys() >= x for e in eds), timeout)


async def test_postgres_outage_loses_no_accepted_edit(tmp_path: Path) -> None:
    pg = PrivatePostgres()
    dsn = await asyncio.to_thread(pg.create)
    server = ServerProcess(
        dsn,
        tmp_path / "data",
        FLOWAI_GROUP_COMMIT_MS="20",
        FLOWAI_ROOM_UNLOAD_GRACE_MS="300",
        FLOWAI_LOG_LEVEL="CRITICAL",  # the outage logs every failed retry
    )
    token = mint_token(TEST_SECRET, "alice")
    editing, stop = asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            project_ids = [await _create_project(http, f"room {i}") for i in range(ROOMS)]
            # Opened by nobody until the outage: a join then has to read it from the database.
            cold_pid = await _create_project(http, "cold")
            cold_url = f"ws://127.0.0.1:{server.port}/ws/{cold_pid}?token={token}"
            rooms: dict[str, list[Editor]] = {}
            for pid in project_ids:
                url = f"ws://127.0.0.1:{server.port}/ws/{pid}?token={token}"
                rooms[pid] = [
                    Editor(f"{pid[:4]}c{i}", await YClient(url).connect())
                    for i in range(CLIENTS_PER_ROOM)
                ]
            editors = [e for eds in rooms.values() for e in eds]
            for e in editors:
                await e.client.wait_synced()
            tasks = [asyncio.create_task(e.run(editing, stop)) for e in editors]
            started = time.monotonic()

            editing.set()
            await asyncio.sleep(1.0)
            await asyncio.to_thread(pg.stop)
            outage_started = time.monotonic()
            readyz_during: list[dict[str, Any]] = []
            while time.monotonic() - outage_started < OUTAGE_S:
                response = await http.get("/readyz")
                if response.status_code == 503:
                    readyz_during.append(response.json())
                await asyncio.sleep(0.25)
            # A join that needs the database is refused with "try again later", not left hanging.
            refused = await YClient(cold_url).connect(handshake=False)
            assert await refused.wait_closed(timeout=20) == CloseCode.TRY_AGAIN_LATER
            # Still down: the rooms synced every edit in memory.
            editing.clear()
            written_in_outage = sum(len(e.written) for e in editors)
            await _converged(rooms, timeout=20)
            assert (await http.get("/readyz")).status_code == 503

            await asyncio.to_thread(pg.start)
            editing.set()
            deadline = time.monotonic() + 30
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "/readyz never recovered"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            stop.set()
            editing.set()
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - started
            await _converged(rooms, timeout=20)

            assert readyz_during, "/readyz never reported the outage"
            assert all(r["checks"]["database"].startswith("unavailable") for r in readyz_during), (
                readyz_during
            )
            # Everything accepted before, during and after the outage reaches the database.
            for pid, eds in rooms.items():
                expected = set().union(*(e.written for e in eds))
                stored: set[str] = set()

                async def all_stored(pid: str = pid, expected: set[str] = expected) -> bool:
                    nonlocal stored
                    stored = await _stored_keys(dsn, pid)
                    return stored >= expected

                deadline = time.monotonic() + 30
                while not await all_stored():
                    assert time.monotonic() < deadline, f"{len(expected - stored)} edits not stored"
                    await asyncio.sleep(0.2)
            late = await YClient(cold_url).connect()  # the database is back: the join goes through
            await late.wait_synced()
            await late.close()
            # And a fresh load of each room, after it unloaded, holds them too.
            for e in editors:
                await e.client.close()
            await _wait_rooms_unloaded(http)
            for pid, eds in rooms.items():
                url = f"ws://127.0.0.1:{server.port}/ws/{pid}?token={token}"
                reader = await YClient(url).connect()
                await reader.wait_synced()
                expected = set().union(*(e.written for e in eds))
                assert set(reader.doc.get("assets", type=Map).keys()) == expected
                await reader.close()
        total = sum(len(e.written) for e in editors)
        print(
            f"postgres outage: {len(editors)} clients in {ROOMS} rooms, {total} updates in "
            f"{elapsed:.1f} s ({total / elapsed:.0f}/s), {written_in_outage} written by the end "
            f"of a {OUTAGE_S:.0f} s outage, all stored"
        )
    finally:
        stop.set()
        editing.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            # With the database still down, a graceful stop waits for the flush forever.
            await server.stop_or_kill()
        finally:
            await asyncio.to_thread(pg.destroy)


async def _wait_rooms_unloaded(http: httpx.AsyncClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        metrics = (await http.get("/metrics")).text
        loaded = [line for line in metrics.splitlines() if line.startswith("flowai_rooms ")]
        if loaded and float(loaded[0].split()[1]) == 0:
            return
        assert time.monotonic() < deadline, f"rooms still loaded: {loaded}"
        await asyncio.sleep(0.1)

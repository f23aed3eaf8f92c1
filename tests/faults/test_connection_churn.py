"""Connection churn and clients that stop reading, against a ``flowai serve`` subprocess.

- Hundreds (long mode: thousands) of connect / sync / edit / presence / disconnect cycles over
  a few rooms that keep loading and unloading: the server's resident memory after the run
  stays within a generous bound of its size after a warm-up (a leak check, not a timing
  check), nothing written is lost and no presence outlives its connection.
- An edit sent just before a client closes is kept, in a busy room.
- Many clients that never read while editors fill a busy room: each is cut off (1013, counted
  in ``flowai_slow_consumers``), the editors keep converging, and a cut-off client that reads
  again finds the 1013 after its backlog; clients cut off while a send to them is blocked
  leave the room at once. ``tests/integration/test_ws_errors.py`` covers one slow client; this
  covers many at once, under paced edits.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from server.auth import mint_token
from server.close_codes import CloseCode
from tests.support.long_mode import scale
from tests.support.process import ServerProcess
from tests.support.server import TEST_SECRET
from tests.support.yclient import YClient, covers, eventually

# The long mode runs for minutes; the short mode keeps the project's default limit.
pytestmark = pytest.mark.timeout(scale(120, 1800))

TOKEN = mint_token(TEST_SECRET, "alice")


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


async def metric(http: httpx.AsyncClient, name: str) -> float:
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not found")


async def wait_metric(http: httpx.AsyncClient, name: str, value: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (current := await metric(http, name)) != value:
        assert time.monotonic() < deadline, f"{name} is {current}, expected {value}"
        await asyncio.sleep(0.05)


async def create_projects(http: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for i in range(count):
        response = await http.post("/api/projects", json={"title": f"room {i}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def ws_url(port: int, project_id: str, *, saved: bool = False) -> str:
    return f"ws://127.0.0.1:{port}/ws/{project_id}?token={TOKEN}" + ("&saved=1" if saved else "")


def put(doc: Doc[Any], key: str, value: Any, root: str = "assets") -> None:
    doc.get(root, type=Map)[key] = value


# --- churn -----------------------------------------------------------------------------------

CHURN_CYCLES = scale(500, 5000)
WARMUP_CYCLES = scale(100, 500)
CONCURRENCY = 8
ROOMS = 6
RSS_GROWTH_MB_MAX = scale(30, 40)


async def test_connection_churn_does_not_grow_memory(tmp_path: Path, database_url: str) -> None:
    server = ServerProcess(
        database_url, tmp_path, FLOWAI_ROOM_UNLOAD_GRACE_MS="50", FLOWAI_LOG_LEVEL="ERROR"
    )
    await server.start()
    assert server.proc is not None
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            projects = await create_projects(http, ROOMS)
            # One room stays loaded throughout, so its presence map sees every departure.
            anchor = await YClient(ws_url(server.port, projects[0])).connect()
            await anchor.wait_synced()
            written: dict[str, set[str]] = {pid: set() for pid in projects}

            async def cycle(n: int) -> None:
                pid = projects[n % ROOMS]
                client = await YClient(ws_url(server.port, pid, saved=True)).connect()
                await client.wait_synced()
                await client.set_awareness(client.doc.client_id, 1, '{"user":"churn"}')
                await client.edit(lambda d: put(d, f"k{n}", n))
                written[pid].add(f"k{n}")
                # Leave once the server reports the edit stored: the check below is then
                # about storage across room loads, not about the close race (tested apart).
                state = client.doc.get_state()
                await eventually(lambda: any(covers(sv, state) for sv in client.saved))
                await client.close()

            async def run(first: int, count: int) -> None:
                queue = iter(range(first, first + count))

                async def worker() -> None:
                    for n in queue:
                        await cycle(n)

                await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

            await run(0, WARMUP_CYCLES)
            await wait_metric(http, "flowai_rooms", 1, timeout=30)
            rss_warm = rss_mb(server.proc.pid)
            started = time.monotonic()
            await run(WARMUP_CYCLES, CHURN_CYCLES)
            elapsed = time.monotonic() - started
            await wait_metric(http, "flowai_rooms", 1, timeout=30)
            await wait_metric(http, "flowai_connections", 1, timeout=30)
            rss_end = rss_mb(server.proc.pid)

            # The anchor saw every churned presence come and go.
            await eventually(lambda: set(anchor.awareness) == set(), timeout=10)
            await anchor.close()
            for pid in projects:
                reader = await YClient(ws_url(server.port, pid)).connect()
                await reader.wait_synced()
                assert set(reader.doc.get("assets", type=Map).keys()) == written[pid]
                assert reader.awareness == {}
                await reader.close()
        growth = rss_end - rss_warm
        print(
            f"churn: {CHURN_CYCLES} connect/sync/edit/disconnect cycles over {ROOMS} rooms in "
            f"{elapsed:.1f} s ({CHURN_CYCLES / elapsed:.0f}/s, {CONCURRENCY} at a time); server "
            f"RSS {rss_warm:.1f} MB after {WARMUP_CYCLES} warm-up cycles, {rss_end:.1f} MB at "
            f"the end ({growth:+.1f} MB)"
        )
        assert growth < RSS_GROWTH_MB_MAX, f"RSS grew {growth:.1f} MB over {CHURN_CYCLES} cycles"
    finally:
        await server.stop()


async def test_edit_sent_just_before_leaving_is_kept(tmp_path: Path, database_url: str) -> None:
    """A client that closes right after an edit (a closing browser tab) still has its edit
    applied, even when the server was writing to it at that moment."""
    server = ServerProcess(database_url, tmp_path, FLOWAI_LOG_LEVEL="ERROR")
    await server.start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            (pid,) = await create_projects(http, 1)
        url = ws_url(server.port, pid)
        # A busy room: the server is often writing to a client at the moment it leaves.
        busy = await YClient(url).connect()
        await busy.wait_synced()
        stop = asyncio.Event()

        async def keep_editing() -> None:
            for n in range(100_000):
                if stop.is_set():
                    return
                await busy.edit(lambda d, n=n: put(d, f"b{n % 50}", n, root="clips"))
                await asyncio.sleep(0.003)

        task = asyncio.create_task(keep_editing())
        written = set()
        for n in range(scale(150, 2000)):
            client = await YClient(url).connect()
            await client.wait_synced()
            await client.edit(lambda d, n=n: put(d, f"k{n}", n))
            written.add(f"k{n}")
            await client.close()  # right after the edit, like a closing browser tab
        stop.set()
        await task
        await eventually(lambda: set(busy.doc.get("assets", type=Map).keys()) == written, 10)
        await busy.close()
    finally:
        await server.stop()


# --- clients that stop reading ---------------------------------------------------------------

SILENT_CLIENTS = scale(8, 32)
EDITORS = 3
BLOB_BYTES = 16 * 1024
KEYS_PER_EDITOR = 8


def blob(size: int) -> str:
    # Random, so nothing on the way can compress it.
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


async def _fill_until_cut_off(
    http: httpx.AsyncClient, editors: list[YClient], expected_cut: int, size: int = BLOB_BYTES
) -> dict[str, str]:
    """Editors overwrite their keys with blobs of ``size`` bytes, one round at a time, until
    ``expected_cut`` connections were closed for overflowing their send queue. Returns the
    last value of every key."""
    last: dict[str, str] = {}
    deadline = time.monotonic() + 90
    for n in range(20_000):
        for i, editor in enumerate(editors):
            key, value = f"e{i}-{n % KEYS_PER_EDITOR}", blob(size)
            await editor.edit(lambda d, k=key, v=value: put(d, k, v))
            last[key] = value
        # The editors read everything before the next round: only the silent ones fall behind.
        states = [editor.doc.get_state() for editor in editors]
        await eventually(
            lambda s=states: all(covers(e.doc.get_state(), sv) for e in editors for sv in s), 10
        )
        if n % 10 == 0 and await metric(http, "flowai_slow_consumers_total") >= expected_cut:
            return last
        assert time.monotonic() < deadline, "the silent clients were never cut off"
    raise AssertionError("the silent clients were never cut off")


async def _converge(editors: list[YClient], last: dict[str, str]) -> None:
    def holds_all(c: YClient) -> bool:
        return bool(c.doc.get("assets", type=Map).to_py() == last)

    await eventually(lambda: all(holds_all(c) for c in editors), timeout=30)


async def test_many_silent_clients_are_cut_off_while_editors_converge(
    tmp_path: Path, database_url: str
) -> None:
    server = ServerProcess(
        database_url,
        tmp_path,
        FLOWAI_SEND_QUEUE_BYTES_MAX=str(64 * 1024),
        FLOWAI_LOG_LEVEL="ERROR",
    )
    await server.start()
    silent: list[Any] = []
    editors: list[YClient] = []
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            (pid,) = await create_projects(http, 1)
            url = ws_url(server.port, pid)
            # max_queue=1 and no reads: each stops draining its socket after one frame.
            silent = [
                await websockets.connect(url, max_queue=1, max_size=None)
                for _ in range(SILENT_CLIENTS)
            ]
            editors = [await YClient(url).connect() for _ in range(EDITORS)]
            for editor in editors:
                await editor.wait_synced()
            started = time.monotonic()
            last = await _fill_until_cut_off(http, editors, SILENT_CLIENTS)
            elapsed = time.monotonic() - started
            await _converge(editors, last)
            assert all(editor.close_code is None for editor in editors)
            # The editors go on editing together after the cut-off.
            for i, editor in enumerate(editors):
                await editor.edit(lambda d, k=f"e{i}-after": put(d, k, "after"))
                last[f"e{i}-after"] = "after"
            await _converge(editors, last)
            assert await metric(http, "flowai_slow_consumers_total") == SILENT_CLIENTS

            # A cut-off client that reads again finds the 1013 after its backlog.
            async def drain(ws: Any) -> int | None:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(30):
                        while True:
                            await ws.recv()
                return closed.value.rcvd.code if closed.value.rcvd else None

            codes = await asyncio.gather(*(drain(ws) for ws in silent))
            assert codes == [CloseCode.TRY_AGAIN_LATER] * SILENT_CLIENTS
        print(
            f"silent clients: {SILENT_CLIENTS} never-reading clients cut off with 1013 after "
            f"{elapsed:.1f} s of {EDITORS} editors sending {BLOB_BYTES // 1024} KB updates; "
            "editors converged"
        )
    finally:
        for editor in editors:
            await editor.close()
        for ws in silent:
            ws.transport.abort()
        await server.stop()


async def test_connections_of_clients_that_never_read_are_released(
    tmp_path: Path, database_url: str
) -> None:
    """Clients cut off while the server is blocked writing to them (they never read again)
    leave their room at once: the room empties and unloads."""
    server = ServerProcess(
        database_url,
        tmp_path,
        FLOWAI_SEND_QUEUE_BYTES_MAX=str(64 * 1024),
        FLOWAI_ROOM_UNLOAD_GRACE_MS="50",
        FLOWAI_IDLE_TIMEOUT_S="2",
        FLOWAI_LOG_LEVEL="ERROR",
    )
    await server.start()
    silent: list[Any] = []
    editor: YClient | None = None
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as http:
            (pid,) = await create_projects(http, 1)
            url = ws_url(server.port, pid)
            silent = [await websockets.connect(url, max_queue=1, max_size=None) for _ in range(2)]
            editor = await YClient(url).connect()
            await editor.wait_synced()
            # Small frames, one per round: each send queue holds a frame or two until the
            # socket stops draining, so the cut-off happens while data is still queued.
            await _fill_until_cut_off(http, [editor], 2, size=4096)
            await editor.close()
            # Nobody is left who reads: the room should empty and unload.
            await wait_metric(http, "flowai_connections", 0, timeout=10)
            await wait_metric(http, "flowai_rooms", 0, timeout=10)
    finally:
        for ws in silent:
            ws.transport.abort()
        await server.stop()

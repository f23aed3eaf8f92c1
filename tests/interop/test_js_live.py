"""The official JS client during a live restore, and across server instances."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Map

from crdt.timeline import add_track, read_timeline
from server.auth import mint_token
from tests.interop.test_js_interop import INTEROP_DIR, JS_TIMEOUT_S, NODE, SCRIPT, roots_json
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.server import TEST_SECRET, RunningServer
from tests.support.yclient import YClient, eventually

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed to run the JS client)"),
]


class JsWatcher:
    """A JS client (Node subprocess) that waits until its tracks are exactly ``tracks``."""

    def __init__(self, port: int, project_id: str, token: str, tracks: list[str]) -> None:
        self.args = [
            f"--url=ws://127.0.0.1:{port}/ws",
            f"--room={project_id}",
            f"--timeout-ms={int(JS_TIMEOUT_S * 1000) - 5000}",
            "--scenario=watch",
            f"--token={token}",
            f"--tracks={','.join(tracks)}",
        ]
        self.process: asyncio.subprocess.Process | None = None
        self.stderr: list[str] = []

    async def start(self) -> JsWatcher:
        assert NODE is not None
        self.process = await asyncio.create_subprocess_exec(
            NODE,
            str(SCRIPT),
            *self.args,
            cwd=INTEROP_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        async with asyncio.timeout(JS_TIMEOUT_S):
            while True:
                line = (await self.process.stderr.readline()).decode()
                self.stderr.append(line)
                if not line or line.strip() == "[interop] synced":
                    break
        assert self.stderr[-1].strip() == "[interop] synced", "".join(self.stderr)
        return self

    async def result(self) -> dict[str, Any]:
        assert self.process is not None
        try:
            out, err = await asyncio.wait_for(self.process.communicate(), JS_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            await self.process.communicate()
            pytest.fail("the JS client did not converge in time")
        log = "".join(self.stderr) + err.decode()
        assert self.process.returncode == 0, f"JS client failed:\n{log}"
        result: dict[str, Any] = json.loads(out)
        return result


async def test_restore_reaches_js_and_python_clients_live(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Restore")
    py = await YClient(server.ws_url(pid, "alice")).connect()
    await py.wait_synced()
    await py.edit(lambda d: add_track(d, "video", "V1", track_id="t1"))
    live = server.services.rooms.get(pid)
    assert live is not None
    await eventually(lambda: [t.id for t in read_timeline(live.room.doc).tracks] == ["t1"])
    async with server.client("alice") as http:
        version = (await http.post(f"/api/projects/{pid}/versions", json={"label": "one"})).json()
    await py.edit(lambda d: add_track(d, "audio", "A1", track_id="t2"))
    await eventually(lambda: len(read_timeline(live.room.doc).tracks) == 2)
    # The JS client joins with both tracks, then watches the restore remove t2 live.
    js = await JsWatcher(server.port, pid, server.token("alice"), ["t1"]).start()
    async with server.client("alice") as http:
        r = await http.post(f"/api/projects/{pid}/versions/{version['version']}/restore")
        assert r.status_code == 200, r.text
    result = await js.result()
    await eventually(lambda: [t.id for t in read_timeline(py.doc).tracks] == ["t1"])
    assert result["roots"] == roots_json(py.doc)
    assert py.close_code is None
    await py.close()


async def test_js_and_python_clients_on_different_instances_converge(
    tmp_path: Path, database_url: str
) -> None:
    redis = await RedisServer(tmp_path).start()
    procs = [
        ServerProcess(database_url, tmp_path / f"i{i}", FLOWAI_REDIS_URL=redis.url)
        for i in range(2)
    ]
    try:
        await asyncio.gather(*(p.start() for p in procs))
        token = mint_token(TEST_SECRET, "alice")
        import httpx

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{procs[0].port}",
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            pid = (await http.post("/api/projects", json={"title": "x"})).json()["id"]
        py = await YClient(f"ws://127.0.0.1:{procs[0].port}/ws/{pid}?token={token}").connect()
        await py.wait_synced()
        # The JS client is on the other instance and waits for the Python client's track.
        js = await JsWatcher(procs[1].port, pid, token, ["t-py"]).start()
        await py.edit(lambda d: add_track(d, "video", "from python", track_id="t-py"))
        result = await js.result()
        assert result["roots"]["tracks"]["t-py"]["name"] == "from python"
        assert set(py.doc.get("tracks", type=Map).keys()) == {"t-py"}
        await py.close()
    finally:
        await asyncio.gather(*(p.stop() for p in procs))
        await redis.stop()

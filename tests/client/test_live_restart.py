"""Both clients through a server restart (1012): the SDK and the plain official provider.

The server runs as a real ``flowai serve`` process; once both clients have synced it is
stopped (SIGTERM: every socket is closed with 1012 after what was queued for it) and started
again on the same port. Both must come back by themselves, and the edit the SDK client made
while the server was down must be stored by the new process.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.auth import mint_token
from tests.client.node import BUILD_DIR, CLIENT_DIR, NODE, needs_node
from tests.interop.test_js_interop import INTEROP_DIR
from tests.support.process import ServerProcess, free_port
from tests.support.server import TEST_SECRET

pytestmark = [needs_node, pytest.mark.usefixtures("client_build")]

WAIT_S = 45.0
QUICK = {"FLOWAI_ROOM_UNLOAD_GRACE_MS": "200", "FLOWAI_GROUP_COMMIT_MS": "10"}


async def _until_line(process: asyncio.subprocess.Process, marker: str, seen: list[str]) -> None:
    assert process.stderr is not None
    async with asyncio.timeout(WAIT_S):
        while True:
            line = (await process.stderr.readline()).decode()
            seen.append(line)
            if not line or line.strip() == marker:
                break
    assert seen[-1].strip() == marker, "".join(seen)


async def _finish(process: asyncio.subprocess.Process, seen: list[str]) -> str:
    try:
        out, err = await asyncio.wait_for(process.communicate(), WAIT_S)
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail("a client did not resume after the restart:\n" + "".join(seen))
    assert process.returncode == 0, out.decode() + "".join(seen) + err.decode()
    return out.decode()


async def test_sdk_and_plain_provider_resume_after_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    assert NODE is not None
    port = free_port()
    first = await ServerProcess(database_url, tmp_path, port=port, **QUICK).start()
    try:
        token = mint_token(TEST_SECRET, "alice")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            response = await http.post("/api/projects", json={"title": "Restart"})
            assert response.status_code == 201, response.text
            project_id = response.json()["id"]
        result_path = tmp_path / "restart.json"
        sdk = await asyncio.create_subprocess_exec(
            NODE,
            str(BUILD_DIR / "test" / "live" / "restart.test.js"),
            cwd=CLIENT_DIR,
            env={
                **os.environ,
                "FLOWAI_TEST_WS_URL": f"ws://127.0.0.1:{port}/ws",
                "FLOWAI_TEST_HTTP_URL": f"http://127.0.0.1:{port}",
                "FLOWAI_TEST_PROJECT": project_id,
                "FLOWAI_TEST_JWT_SECRET": TEST_SECRET,
                "FLOWAI_TEST_RESULT": str(result_path),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        plain = await asyncio.create_subprocess_exec(
            NODE,
            str(INTEROP_DIR / "plain_provider_closes.mjs"),
            f"--url=ws://127.0.0.1:{port}/ws",
            f"--room={project_id}",
            f"--token={token}",
            "--scenario=restart",
            "--observe-ms=0",
            f"--timeout-ms={int(WAIT_S * 1000)}",
            cwd=INTEROP_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        sdk_log: list[str] = []
        plain_log: list[str] = []
        await _until_line(sdk, "[sdk] synced", sdk_log)
        await _until_line(plain, "[plain] synced", plain_log)
        await first.stop()
    finally:
        await first.stop_or_kill()
    second = await ServerProcess(database_url, tmp_path, port=port, **QUICK).start()
    try:
        await _finish(sdk, sdk_log)
        plain_result: dict[str, Any] = json.loads(await _finish(plain, plain_log))
        sdk_result: dict[str, Any] = json.loads(result_path.read_text())
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            timeline = (await http.get(f"/api/projects/{project_id}")).json()["timeline"]
    finally:
        await second.stop_or_kill()
    assert [t["id"] for t in timeline["tracks"]] == ["restart"]
    assert plain_result["closes"][0] == 1012, plain_result
    assert plain_result["syncs"] == 2, plain_result
    print(
        f"restart: SDK {sdk_result['attemptsUntilResumed']} sockets until resumed, "
        f"plain {plain_result['attempts']} ({plain_result['closes']})"
    )

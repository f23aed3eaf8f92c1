"""Run one of the client's live Node tests (client/test/live) against a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.client.node import run_node
from tests.support.server import TEST_SECRET, RunningServer


async def run_live_test(
    server: RunningServer, name: str, project_id: str, tmp_path: Path
) -> dict[str, Any]:
    """``node --test`` on ``.test-build/test/live/NAME.test.js``; returns what it wrote with
    ``writeResult`` (an empty dict if nothing). Fails the pytest test if a Node test fails."""
    result_path = tmp_path / f"{name}.json"
    code, out, err = await run_node(
        "--test",
        f".test-build/test/live/{name}.test.js",
        env={
            "FLOWAI_TEST_WS_URL": f"ws://127.0.0.1:{server.port}/ws",
            "FLOWAI_TEST_HTTP_URL": server.http,
            "FLOWAI_TEST_PROJECT": project_id,
            "FLOWAI_TEST_JWT_SECRET": TEST_SECRET,
            "FLOWAI_TEST_RESULT": str(result_path),
        },
    )
    assert code == 0 and "# fail 0" in out, f"node tests failed:\n{out}\n{err}"
    assert "# pass 0" not in out, out
    if not result_path.exists():
        return {}
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result

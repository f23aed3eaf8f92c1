"""The inspector page in a real browser (Debian's Chromium, driven by playwright-core).

Each test starts the real server on a fresh database, sets up users and projects through
REST, then runs a scenario of ``scenarios.mjs`` with two browser contexts as two users. What a
scenario needs done on the server side mid-way (stop the server, hold a table lock, show a
job's progress) it asks for as a step, carried out here.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from ai.jobs import presence_client_id
from tests.browser.browser_run import require_browser, run_scenario
from tests.support.server import TEST_SECRET, RunningServer

pytestmark = pytest.mark.usefixtures("_browser_available")


@pytest.fixture
def _browser_available() -> None:
    require_browser()


def _config(server: RunningServer, project_id: str, **extra: Any) -> dict[str, Any]:
    return {"base": server.http, "secret": TEST_SECRET, "project": project_id, **extra}


async def test_ui_and_sdk_edits_converge_in_both_pages(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Converge")
    await server.add_member("alice", pid, "bob", "editor")
    await server.add_member("alice", pid, "carol", "editor")
    granted = await server.services.credits.grant("alice", 500, key="browser-test", reason="test")
    assert granted is not None
    job_id = uuid.uuid4()

    async def show_job(_: dict[str, Any]) -> None:
        # What a worker does while a job runs: its progress as a presence entry of the room.
        state = {
            "job": {
                "id": str(job_id),
                "kind": "subtitles",
                "user_id": "alice",
                "status": "running",
                "progress": 0.4,
                "stage": "transcribing",
            }
        }
        server.services.rooms.presence(pid, presence_client_id(job_id), state)

    screenshot = os.environ.get("FLOWAI_INSPECTOR_SCREENSHOT")
    result = await run_scenario(
        "converge",
        _config(server, pid, screenshot=screenshot),
        {"show-job": show_job},
    )
    assert result["alice_clips"] == result["bob_clips"]
    assert len(result["alice_clips"]) == 7
    # The server's copy is the same timeline (read model of the live document).
    async with server.client("alice") as http:
        timeline = (await http.get(f"/api/projects/{pid}")).json()["timeline"]
    server_clips = sorted(
        f"{c['track']}|{c['start_ms']}|{c['duration_ms']}|{c['text']}" for c in timeline["clips"]
    )
    assert server_clips == result["alice_clips"]
    print("convergence (ms):", result["ui_to_page_ms"], result["sdk_to_pages_ms"])

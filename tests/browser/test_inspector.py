"""The inspector page in a real browser (Debian's Chromium, driven by playwright-core).

Each test starts the real server on a fresh database, sets up users and projects through
REST, then runs a scenario of ``scenarios.mjs`` with two browser contexts as two users. What a
scenario needs done on the server side mid-way (stop the server, hold a table lock, show a
job's progress) it asks for as a step, carried out here.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ai.jobs.context import presence_client_id
from server.close_codes import CloseCode
from server.settings import Settings
from tests.browser.browser_run import require_browser, run_scenario
from tests.support.server import TEST_SECRET, RunningServer, run_server

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

    # FLOWAI_INSPECTOR_SCREENSHOT=docs/inspector.png takes the README's picture.
    wanted = os.environ.get("FLOWAI_INSPECTOR_SCREENSHOT")
    screenshot = str(Path(wanted).resolve()) if wanted else None
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
    print(
        "convergence (ms): UI edit to the other page",
        result["ui_to_page_ms"],
        "; UI edit to the SDK client",
        result["ui_to_sdk_ms"],
        "; SDK edit to both pages",
        result["sdk_to_pages_ms"],
    )


async def closes_with(server: RunningServer, code: int) -> int:
    """``flowai_ws_closes_total{code=...}`` as /metrics reports it."""
    async with server.client("alice") as http:
        text = (await http.get("/metrics")).text
    match = re.search(rf'^flowai_ws_closes_total{{code="{code}"}} ([0-9.e+]+)$', text, re.M)
    return int(float(match.group(1))) if match else 0


async def test_a_restore_in_one_page_appears_in_the_other_without_reload(
    settings: Settings,
) -> None:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(run_server(settings))
        pid = await server.create_project("alice", "Restore")
        await server.add_member("alice", pid, "bob", "editor")

        async def stop_server(_: dict[str, Any]) -> None:
            await stack.aclose()

        result = await run_scenario("restore", _config(server, pid), {"stop-server": stop_server})
    assert result["preview_clips"] == ["closing@3000", "opening@0"]
    assert result["live_clips_before"] == 3
    assert result["bob_clips_after"] == ["closing@3000", "opening@0"]
    assert result["same_document"] is True
    assert "Server unreachable" in result["error_text"]
    print("restore reached the other page after (ms):", result["restore_to_other_page_ms"])


async def test_an_expired_token_is_refreshed_without_losing_unsent_edits(
    tmp_path: Path, database_url: str
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url=database_url, jwt_leeway_s=0)
    async with run_server(settings) as server:
        pid = await server.create_project("alice", "Token")
        await server.add_member("alice", pid, "bob", "editor")

        def alice_connections() -> list[Any]:
            return [c for c in server.services.idle.connections if c.user_id == "alice"]

        async def drop_alice(_: dict[str, Any]) -> None:
            # What a restart does to every socket; the page reconnects with its expired token.
            for conn in alice_connections():
                conn.close_with(CloseCode.SERVER_RESTARTING, "restarting")

        async def sockets_of_alice(_: dict[str, Any]) -> dict[str, Any]:
            return {"connections": len(alice_connections())}

        refused_before = await closes_with(server, 4401)
        result = await run_scenario(
            "token",
            _config(server, pid, short_ttl_s=8),
            {"drop-alice": drop_alice, "sockets-of-alice": sockets_of_alice},
        )
        refused = await closes_with(server, 4401) - refused_before
        # What the server stored (the room reloads from PostgreSQL once the pages left).
        async with server.client("alice") as http:
            timeline = (await http.get(f"/api/projects/{pid}")).json()["timeline"]
    assert result["saved_while_waiting"] == "unsaved"
    assert result["bob_saw_offline_edits_early"] == 0
    # While it waited for a token the page held no socket and opened none.
    assert result["server_connections_of_alice_while_waiting"] == 0
    waiting, after_wait = result["alice_sockets_while_waiting"]
    assert waiting == after_wait
    assert refused == 1
    assert {t["name"] for t in timeline["tracks"]} == {"Before", "Offline"}
    assert [(c["text"], c["start_ms"]) for c in timeline["clips"]] == [("unsent", 750)]
    print("alice opened", result["alice_sockets"], "sockets; 4401 closes:", refused)


async def test_a_removed_member_sees_access_removed_and_stops(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Removal")
    await server.add_member("alice", pid, "bob", "editor")
    counts: dict[str, int] = {}

    async def remove_bob(_: dict[str, Any]) -> None:
        counts["before"] = await closes_with(server, 4403)
        async with server.client("alice") as http:
            response = await http.delete(f"/api/projects/{pid}/members/bob")
            assert response.status_code == 204, response.text

    async def count_closes(_: dict[str, Any]) -> dict[str, Any]:
        counts["after"] = await closes_with(server, 4403)
        return {"closes_4403": counts["after"] - counts["before"]}

    result = await run_scenario(
        "removed",
        _config(server, pid, observe_ms=4000),
        {"remove-bob": remove_bob, "count-closes": count_closes},
    )
    assert result["notice"].startswith("Access removed")
    assert result["editing_off"] == 1
    assert "project_not_found" in result["not_found"]
    # The removal closed Bob's socket with 4403; at most one further attempt may follow.
    closes = result["server_4403_closes"]
    assert 1 <= closes <= 2
    assert result["bob_sockets_after"] - result["bob_sockets_before_removal"] <= 1
    assert result["alice_status"] == "synced"
    print(
        "4403 closes on the server after the removal:",
        closes,
        "; further attempts:",
        closes - 1,
        "; sockets Bob opened after it:",
        result["bob_sockets_after"] - result["bob_sockets_before_removal"],
    )


async def test_saved_appears_only_after_the_servers_ack(
    server: RunningServer, database_url: str
) -> None:
    pid = await server.create_project("alice", "Saved")
    await server.add_member("alice", pid, "bob", "editor")
    held: list[asyncpg.Connection] = []

    async def lock_updates(_: dict[str, Any]) -> None:
        # Commits of accepted updates wait behind this lock, so no ack can be sent.
        conn = await asyncpg.connect(database_url)
        held.append(conn)
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE doc_updates IN EXCLUSIVE MODE")

    async def unlock_updates(_: dict[str, Any]) -> None:
        conn = held.pop()
        await conn.execute("ROLLBACK")
        await conn.close()

    try:
        result = await run_scenario(
            "saved",
            _config(server, pid, hold_ms=1500),
            {"lock-updates": lock_updates, "unlock-updates": unlock_updates},
        )
    finally:
        for conn in held:
            await conn.close()
    assert result["while_locked"] == {"state": "unsaved", "acks": 0}
    assert result["acks_after_unlock"] >= 1
    assert result["bob_state"] == "saved"
    print(
        "ack after unlock (ms):",
        result["first_ack_after_unlock_ms"],
        "; Saved seen after unlock (ms):",
        result["saved_seen_after_unlock_ms"],
    )

"""The SDK's connection against the real server: close codes, token refresh, saved state.

Each test starts the server with the settings its scenario needs, makes alice the owner and bob
an editor of a project, then runs one file of client/test/live under Node. Attempts are counted
on the client (every socket the WebSocket class opened) and on the server (its close metrics).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.client.live import run_live_test
from tests.client.node import needs_node
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server

pytestmark = [needs_node, pytest.mark.usefixtures("client_build")]


async def _project(server: RunningServer) -> str:
    project_id = await server.create_project("alice", "Live")
    await server.add_member("alice", project_id, "bob", "editor")
    return project_id


async def _closes(server: RunningServer) -> dict[int, float]:
    """``flowai_ws_closes_total`` by close code, from /metrics."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    pattern = re.compile(r'^flowai_ws_closes_total\{code="(\d+)"\} (\S+)$', re.MULTILINE)
    return {int(code): float(value) for code, value in pattern.findall(text)}


async def test_permanent_refusals_stop_for_good(server: RunningServer, tmp_path: Path) -> None:
    result = await run_live_test(server, "refusals", await _project(server), tmp_path)
    assert result == {"4403": 1, "4404": 1, "4400": 1}
    print(f"refusals, sockets opened: {result}")
    closes = await _closes(server)
    assert closes.get(4403) == 1
    assert closes.get(4404) == 1
    assert closes.get(4400) == 1


async def test_token_refresh_after_4401(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, jwt_leeway_s=0)
    async with run_server(settings) as server:
        result = await run_live_test(server, "tokenRefresh", await _project(server), tmp_path)
        assert result["getTokenCalls"] == 2
        assert 4401 in result["closes"]
        # One 4401 for the expired token, three for "not-a-token" (first try and two refreshes).
        assert (await _closes(server)).get(4401) == 4
    print(f"token refresh: {result}")


async def test_message_too_big_stops_for_good(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, message_bytes_max=64 * 1024)
    async with run_server(settings) as server:
        result = await run_live_test(server, "tooBig", await _project(server), tmp_path)
        assert result == {"attempts": 1}


async def test_idle_and_rate_limited_closes_back_off_and_resume(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        idle_timeout_s=1.0,
        conn_messages_per_s=10,
        conn_throttle_close_s=0.5,
        conn_messages_burst=30,
        ws_ping_interval_s=0,
    )
    async with run_server(settings) as server:
        result = await run_live_test(server, "retryable", await _project(server), tmp_path)
        closes = await _closes(server)
    assert result["4508"]["attemptsUntilResumed"] >= 2
    assert "rate_limited" in result["4529"]["statuses"]
    assert closes.get(4508, 0) >= 1
    assert closes.get(4529, 0) >= 1
    print(f"retryable: {result}")


async def test_unsaved_changes_clear_only_after_the_ack(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, group_commit_ms=300)
    async with run_server(settings) as server:
        result = await run_live_test(server, "saved", await _project(server), tmp_path)
    assert result["savedMessages"] >= 3

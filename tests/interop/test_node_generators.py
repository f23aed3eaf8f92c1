"""The load generators of ``bench/`` against the real server: every client of a storm syncs
with each client (the two Node ones and the C one of ``bench/native``), a refused one is
reported rather than counted, and the fan-out writer's edits reach every observer and the
server's document."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from pycrdt import Map

from bench import node_gen
from bench.storm_bench import start_generators
from tests.support.server import RunningServer
from tests.support.yclient import YClient

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH"),
]
TIMEOUT_S = 30.0


async def _members(server: RunningServer, count: int) -> tuple[str, list[str]]:
    project_id = await server.create_project("alice", "Generators")
    users = [f"gen-{i}" for i in range(count)]
    for user in users:
        await server.add_member("alice", project_id, user, "editor")
    return project_id, [server.ws_url(project_id, user) for user in users]


async def _storm(urls: list[str], client: str) -> dict[str, Any]:
    gens = await start_generators(client, 1, cpus=None)
    try:
        await node_gen.hand_out(gens, [{"urls": urls, "timeout_ms": 20_000, "client": client}])
        await node_gen.say_all(gens, "go")
        [result] = await node_gen.read_all(gens, TIMEOUT_S)
        await node_gen.say_all(gens, "close")
        [closed] = await node_gen.read_all(gens, TIMEOUT_S)
        assert closed["closed"] == result["synced"]  # the refused ones are closed already
        return result
    finally:
        await node_gen.stop_all(gens)


@pytest.mark.parametrize("client", ["raw", "ws", "native"])
async def test_every_client_of_a_storm_syncs(server: RunningServer, client: str) -> None:
    _, urls = await _members(server, 12)

    result = await _storm(urls, client)

    assert result["synced"] == 12
    assert result["errors"] == []
    assert all(t is not None and t > 0 for t in result["synced_ms"])
    assert result["all_synced_ms"] == max(result["synced_ms"])


@pytest.mark.parametrize("client", ["raw", "ws", "native"])
async def test_a_refused_client_is_reported_and_not_counted(
    server: RunningServer, client: str
) -> None:
    project_id, urls = await _members(server, 3)
    stranger = server.ws_url(project_id, "not-a-member")

    result = await _storm([*urls, stranger], client)

    assert result["synced"] == 3
    assert result["all_synced_ms"] is None
    assert result["synced_ms"][3] is None
    [error] = result["errors"]
    assert error.startswith("client 3:") and "4403" in error, error


async def test_the_writers_edits_reach_every_observer_and_the_document(
    server: RunningServer,
) -> None:
    project_id, urls = await _members(server, 6)
    gens = await node_gen.start("fanout.mjs", 1, cpus=None)
    try:
        payload = {
            "writer_url": urls[0],
            "observer_urls": urls[1:],
            "rate_per_s": 20,
            "duration_s": 0.5,
            "drain_s": 0.5,
            "client": "raw",
        }
        [ready] = await node_gen.hand_out(gens, [payload])
        assert ready["ready"] == 5 and ready["writer"] is True
        await node_gen.say_all(gens, "go")
        [result] = await node_gen.read_all(gens, TIMEOUT_S)
        await node_gen.say_all(gens, "close")
        await node_gen.read_all(gens, TIMEOUT_S)
    finally:
        await node_gen.stop_all(gens)

    assert result["sent"] == 10
    assert result["received"] == 10 * 5
    assert result["per_observer_received"] == [10] * 5
    assert sum(result["hist"].values()) == 50
    reader = await YClient(server.ws_url(project_id, "alice")).connect()
    try:
        await reader.wait_synced()
        assert reader.doc.get("bench", type=Map)["w0"].startswith("@@9:")
    finally:
        await reader.close()


async def test_the_native_client_reports_a_refused_upgrade_and_a_closed_port(
    server: RunningServer,
) -> None:
    _, urls = await _members(server, 2)
    not_found = f"ws://127.0.0.1:{server.port}/elsewhere"
    # Port 1: nothing listens there, the connect is refused.
    closed_port = "ws://127.0.0.1:1/ws/x"

    result = await _storm([urls[0], not_found, closed_port, urls[1]], "native")

    assert result["synced"] == 2
    assert result["synced_ms"][1] is None and result["synced_ms"][2] is None
    assert result["error_count"] == 2
    errors = sorted(result["errors"])
    assert errors[0].startswith("client 1: HTTP 404"), errors
    assert errors[1].startswith("client 2: connect:"), errors

"""Two SDK clients against the real server: they converge, and the server holds the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.live import run_live_test
from tests.client.node import needs_node
from tests.support.server import RunningServer

pytestmark = [needs_node, pytest.mark.usefixtures("client_build")]


async def test_two_sdk_clients_converge(server: RunningServer, tmp_path: Path) -> None:
    project_id = await server.create_project("alice", "Converge")
    await server.add_member("alice", project_id, "bob", "editor")
    result = await run_live_test(server, "converge", project_id, tmp_path)
    # The server's own reader (REST) sees exactly what both clients converged to.
    async with server.client("alice") as http:
        response = await http.get(f"/api/projects/{project_id}")
    assert response.status_code == 200, response.text
    served = response.json()["timeline"]
    converged = result["timeline"]
    for key in ("tracks", "clips", "assets", "problems"):
        assert served[key] == converged[key], key
    print(
        f"converged: first round {result['firstRoundMs']:.0f} ms, "
        f"second round {result['secondRoundMs']:.0f} ms"
    )

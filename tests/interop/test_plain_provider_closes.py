"""The plain official client (``WebsocketProvider``, no SDK) after each of the server's close codes.

y-websocket 3.x reconnects after every close except 4400-4499. These tests count the sockets
the provider opens: after a retryable close (4508 idle, 4529 rate limited) it comes back and
syncs again; after a permanent one (4400, 4401, 4403, 4404, 4413) it opened exactly one socket
and emitted ``closed``. The server closes an oversized message with 4413, not the standard
1009, which the plain client would retry without end, sending the same edit each time.
Also: ``?saved=1`` needs ``provider.messageHandlers[100]``, or the client logs
"Unable to compute message" for every ack.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.interop.test_js_interop import INTEROP_DIR, NODE
from tests.support.server import RunningServer, run_server

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed to run the JS client)"),
]

SCRIPT = INTEROP_DIR / "plain_provider_closes.mjs"
# Several backoff periods of the plain client (100 ms doubling) fit in this window, so a client
# that retried a permanent close would be seen opening more sockets.
OBSERVE_MS = 2500


@pytest.fixture
async def limited_server(tmp_path: Path, database_url: str) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        idle_timeout_s=1.0,
        conn_messages_per_s=10,
        conn_throttle_close_s=0.5,
        conn_messages_burst=30,
        message_bytes_max=64 * 1024,
        ws_ping_interval_s=0,
    )
    async with run_server(settings) as server:
        yield server


async def _plain(server: RunningServer, room: str, token: str, scenario: str) -> dict[str, Any]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPT),
        f"--url=ws://127.0.0.1:{server.port}/ws",
        f"--room={room}",
        f"--token={token}",
        f"--scenario={scenario}",
        f"--observe-ms={OBSERVE_MS}",
        cwd=INTEROP_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail(f"the plain client ({scenario}) did not finish in time")
    assert process.returncode == 0, f"{scenario}: {err.decode()}"
    result: dict[str, Any] = json.loads(out)
    return result


async def test_plain_provider_retries_retryable_closes_and_stops_on_permanent_ones(
    limited_server: RunningServer,
) -> None:
    server = limited_server
    project = await server.create_project("alice", "Closes")
    alice = server.token("alice")
    runs = {
        "4508": _plain(server, project, alice, "quiet"),
        "4529": _plain(server, project, alice, "flood"),
        "4400": _plain(server, project, alice, "malformed"),
        "4413": _plain(server, project, alice, "too-big"),
        "4401": _plain(server, project, "not-a-token", "refused"),
        "4403": _plain(server, project, server.token("mallory"), "refused"),
        "4404": _plain(server, str(uuid.uuid4()), alice, "refused"),
    }
    results = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
    print({code: (r["attempts"], r["closes"]) for code, r in results.items()})

    for code in ("4508", "4529"):
        result = results[code]
        assert int(code) in result["closes"], result
        assert result["attempts"] >= 2, result
        assert result["syncs"] >= 2, f"{code}: the client synced again after the close"
        assert result["closed"] is None, result
    for code in ("4400", "4401", "4403", "4404", "4413"):
        result = results[code]
        assert result["closes"] == [int(code)], result
        assert result["attempts"] == 1, result
        assert result["closed"]["code"] == int(code), result


async def test_saved_messages_need_a_handler_on_the_plain_provider(
    limited_server: RunningServer,
) -> None:
    server = limited_server
    project = await server.create_project("alice", "Saved")
    token = server.token("alice")
    without, with_handler = await asyncio.gather(
        _plain(server, project, token, "saved"), _plain(server, project, token, "saved-handler")
    )
    assert without["unableToCompute"] >= 1, without
    assert with_handler["unableToCompute"] == 0, with_handler
    assert with_handler["saved"], with_handler
    assert max(with_handler["saved"]) == with_handler["ownClock"] > 0, with_handler

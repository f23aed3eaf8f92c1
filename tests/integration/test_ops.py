"""Operations: metrics, request ids in logs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from crdt.timeline import add_track, read_timeline
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.yclient import YClient, eventually


async def test_metrics_count_rooms_connections_frames_and_commits(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    client = await YClient(server.ws_url(pid, "alice")).connect()
    await client.wait_synced()
    await client.edit(lambda d: add_track(d, "video", "V", track_id="t"))
    live = server.services.rooms.get(pid)
    assert live is not None
    await eventually(lambda: bool(read_timeline(live.room.doc).tracks))
    await live.flush()
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["flowai_rooms"] == 1
    assert values["flowai_connections"] == 1
    assert values["flowai_ws_messages_in_total"] >= 2  # step 1 and the update
    assert values["flowai_ws_messages_out_total"] >= 2  # step 1 and step 2
    assert values["flowai_persist_batch_updates_count"] >= 1
    assert values["flowai_frame_handle_seconds_count"] >= 2
    await client.close()


async def test_request_id_is_echoed_and_logged(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get("/healthz", headers={"X-Request-ID": "req-123"})
        assert r.headers["x-request-id"] == "req-123"
        r = await http.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        assert r.headers["x-request-id"] != "bad id with spaces"
    from server.log_context import ContextFilter, request_id

    token = request_id.set("req-abc")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        ContextFilter().filter(record)
        assert record.request_id == "req-abc"  # type: ignore[attr-defined]
    finally:
        request_id.reset(token)


async def test_job_and_credit_gauges_are_sampled_from_the_database(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, metrics_sample_interval_s=0.1)
    async with run_server(settings) as server:
        await server.services.credits.grant("alice", 500, key="g1", reason="test")
        account = await server.services.credits.balance("alice")
        assert account.balance == 500

        async def values() -> dict[str, float]:
            async with httpx.AsyncClient(base_url=server.http) as http:
                text = (await http.get("/metrics")).text
            return {
                line.split(" ")[0]: float(line.split(" ")[1])
                for line in text.splitlines()
                if line and not line.startswith("#")
            }

        for _ in range(100):
            if (await values()).get("flowai_credits_balance") == 500:
                break
            await asyncio.sleep(0.05)
        got = await values()
        assert got["flowai_credits_balance"] == 500
        assert got["flowai_credits_held"] == 0
        assert got['flowai_jobs{status="queued"}'] == 0

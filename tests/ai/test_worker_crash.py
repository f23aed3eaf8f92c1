"""A worker killed mid-job: its job is recovered (retried by another worker), never left
"running", and charged exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.ai.helpers import ai_settings, balance, expected_credits, grant, wait_job
from tests.support.fake_providers import ELEVENLABS_KEY, OPENAI_KEY, FakeProviders, Fault
from tests.support.server import TEST_SECRET, run_server


async def test_a_job_survives_its_worker_being_killed(
    tmp_path: Path, database_url: str, fake: FakeProviders
) -> None:
    gate = asyncio.Event()
    fake.fail("chat", Fault(gate=gate))  # the first attempt hangs at the provider
    settings = ai_settings(tmp_path, database_url, fake, jobs_in_process=False)
    env = {
        **os.environ,
        "FLOWAI_DATABASE_URL": database_url,
        "FLOWAI_DATA_DIR": str(tmp_path),
        "FLOWAI_JWT_SECRET": TEST_SECRET,
        "FLOWAI_LOG_JSON": "false",
        "FLOWAI_LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": OPENAI_KEY,
        "FLOWAI_OPENAI_BASE_URL": fake.openai_base_url,
        "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
        "FLOWAI_ELEVENLABS_BASE_URL": fake.elevenlabs_base_url,
        "FLOWAI_JOB_HEARTBEAT_S": "0.2",
        "FLOWAI_JOB_POLL_S": "0.2",
        # A worker refuses to start without Redis (its results would not reach live rooms).
        "FLOWAI_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    async with run_server(settings) as server:
        await grant(server, "alice", 1000)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "worker", env=env
        )
        try:
            async with server.client("alice") as http:
                r = await http.post("/api/ai/content", json={"kind": "titles", "brief": "x"})
                job_id = r.json()["id"]
                for _ in range(1500):  # the worker starts and takes the job (at most 30 s)
                    if fake.calls("chat"):
                        break
                    await asyncio.sleep(0.02)
                assert fake.calls("chat"), "the worker never ran the job"
                running = (await http.get(f"/api/jobs/{job_id}")).json()
                assert running["status"] == "running" and running["attempts"] == 1

                worker.send_signal(signal.SIGKILL)
                await worker.wait()

                # Another worker (here, one in the server's process) notices the silence.
                assert server.services.ai is not None
                recovery = asyncio.create_task(server.services.ai.queue.run_worker())
                try:
                    job = await wait_job(http, job_id, timeout=30)
                finally:
                    recovery.cancel()
                    await asyncio.gather(recovery, return_exceptions=True)
                assert job["status"] == "succeeded", job
                assert job["attempts"] == 2
                charged = expected_credits(fake)  # the killed attempt was never answered
                assert job["cost"] == charged
                assert await balance(http) == {
                    "balance": 1000 - charged,
                    "held": 0,
                    "available": 1000 - charged,
                }
                page = (await http.get("/api/credits/transactions")).json()
                kinds = sorted(t["kind"] for t in page["items"])
                assert kinds == ["capture", "grant", "hold"]
        finally:
            gate.set()
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

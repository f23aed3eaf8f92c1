"""Helpers of the AI tests."""

from __future__ import annotations

import asyncio
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

from billing.prices import CREDIT_USD, Meter, PriceTable
from billing.service import CreditService
from persistence.ledger_pg import PgLedgerStore
from server.settings import Settings
from tests.conftest import make_settings
from tests.support.fake_providers import ELEVENLABS_KEY, OPENAI_KEY, FakeProviders
from tests.support.server import RunningServer
from tests.support.yclient import YClient

FINAL = ("succeeded", "failed", "cancelled")


def ai_settings(
    tmp_path: Path, database_url: str, fake: FakeProviders, **overrides: object
) -> Settings:
    base: dict[str, object] = {
        "database_url": database_url,
        "openai_api_key": OPENAI_KEY,
        "openai_base_url": fake.openai_base_url,
        "elevenlabs_api_key": ELEVENLABS_KEY,
        "elevenlabs_base_url": fake.elevenlabs_base_url,
        "jobs_in_process": True,
        "job_heartbeat_s": 0.2,
        "job_stalled_after_s": 1.0,
        "job_poll_s": 0.2,
        "job_recovery_interval_s": 0.3,
        "job_retry_base_s": 0.05,
        "job_retry_max_s": 0.2,
        "job_shutdown_grace_s": 0.5,
        "openai_text_timeout_s": 1.0,
        "openai_transcribe_timeout_s": 5.0,
        "openai_image_timeout_s": 5.0,
        "elevenlabs_timeout_s": 5.0,
        # Small enough that the 30-second clip is sent in several chunks.
        "openai_upload_bytes_max": 48_000,
    }
    base.update(overrides)
    return make_settings(tmp_path, **base)


async def grant(server: RunningServer, user: str, amount: int) -> None:
    credits = CreditService(PgLedgerStore(server.services.db))
    result = await credits.grant(user, amount, key=f"test-grant:{user}:{amount}", reason="test")
    result.raise_for_status()


async def balance(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/api/credits")
    assert response.status_code == 200, response.text
    body: dict[str, int] = response.json()
    return body


async def wait_job(http: httpx.AsyncClient, job_id: str, *, timeout: float = 30) -> dict[str, Any]:
    """Poll the job until it is final (bounded by ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in FINAL:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job did not finish: {job}")
        await asyncio.sleep(0.05)


async def wait_for(predicate: Any, *, timeout: float = 20, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class JobPresence(dict[int, str]):
    """A client's awareness table that also keeps every job state it was given, in order, so
    a test sees each progress report the server sent instead of sampling the table."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def __setitem__(self, client_id: int, state: str) -> None:
        if '"job"' in state:
            self.seen.append(json.loads(state)["job"])
        super().__setitem__(client_id, state)


def record_job_presence(client: YClient) -> list[dict[str, Any]]:
    """Every job state ``client`` receives from now on (call before ``connect``)."""
    table = JobPresence()
    client.awareness = table
    return table.seen


async def upload(http: httpx.AsyncClient, project_id: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        response = await http.post(
            f"/api/projects/{project_id}/media",
            files={"file": (path.name, f.read(), "application/octet-stream")},
        )
    assert response.status_code == 201, response.text
    asset: dict[str, Any] = response.json()["asset"]
    return asset


async def timeline(http: httpx.AsyncClient, project_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/projects/{project_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["timeline"]
    return body


def expected_credits(fake: FakeProviders, margin_percent: int = 30) -> int:
    """What the product must charge for everything the fake billed (and answered) so far."""
    prices = PriceTable(margin_percent=margin_percent)
    cost = Fraction(0)
    for rec in fake.requests:
        usage = rec.usage
        if not usage:
            continue
        if rec.route == "chat":
            product = f"openai/{usage['model']}"
            cost += prices.cost_usd(
                product,
                {
                    Meter.INPUT_TOKENS: usage["prompt_tokens"],
                    Meter.OUTPUT_TOKENS: usage["completion_tokens"],
                },
            )
        elif rec.route == "transcribe":
            product = f"openai/{usage['model']}"
            cost += prices.cost_usd(product, {Meter.AUDIO_SECONDS: usage["seconds"]})
        elif rec.route == "image":
            product = f"openai/{usage['model']}:{usage['quality']}"
            cost += prices.cost_usd(product, {Meter.IMAGES: usage["images"]})
        elif rec.route == "tts":
            product = f"elevenlabs/{usage['model']}"
            cost += prices.cost_usd(product, {Meter.CHARACTERS: usage["characters"]})
    return math.ceil(cost * (100 + margin_percent) / 100 / CREDIT_USD)

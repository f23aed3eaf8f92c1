"""Job failure paths: rejected requests, retries with backoff, timeouts, malformed bodies,
cancellation, missing keys and credits. A failed or cancelled request never costs credits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.ai.helpers import ai_settings, balance, expected_credits, grant, upload, wait_job
from tests.support.fake_providers import FakeProviders, Fault
from tests.support.server import RunningServer, run_server

TITLES = {"kind": "titles", "brief": "A video about sourdough"}
FULL = {"balance": 1000, "held": 0, "available": 1000}


async def _kinds(http: httpx.AsyncClient) -> list[str]:
    page = (await http.get("/api/credits/transactions")).json()
    return [t["kind"] for t in reversed(page["items"])]


async def test_a_rejected_request_fails_at_once_and_costs_nothing(
    ai: RunningServer, fake: FakeProviders
) -> None:
    fake.fail("chat", Fault(status=400, body={"error": {"message": "bad", "type": "invalid"}}))
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json=TITLES)
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "failed" and job["attempts"] == 1
        assert job["error"]["code"] == "provider_rejected"
        assert job["cost"] is None
        assert await balance(http) == FULL
        assert await _kinds(http) == ["grant", "hold", "release"]
    assert len(fake.calls("chat")) == 1


async def test_transient_errors_are_retried_then_the_job_succeeds(
    ai: RunningServer, fake: FakeProviders
) -> None:
    fake.fail(
        "chat",
        Fault(status=429, headers={"retry-after": "0"}),
        Fault(delay_s=1.5),  # past the 1 s timeout
        Fault(malformed=True),
    )
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json=TITLES)
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 4
        # Only the answered request is charged, once.
        assert job["cost"] == expected_credits(fake)
        assert (await balance(http))["balance"] == 1000 - job["cost"]
        assert await _kinds(http) == ["grant", "hold", "capture"]
    assert len(fake.calls("chat")) == 4


async def test_retries_stop_after_the_last_attempt_and_release_the_hold(
    ai: RunningServer, fake: FakeProviders
) -> None:
    fake.fail("chat", *(Fault(status=503) for _ in range(4)))
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json=TITLES)
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "failed" and job["attempts"] == 4
        assert job["error"]["code"] == "provider_unavailable"
        assert await balance(http) == FULL
    assert len(fake.calls("chat")) == 4


async def test_a_failed_transcription_chunk_is_retried_without_paying_twice(
    ai: RunningServer, fake: FakeProviders, test_clip: Path
) -> None:
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice")
    async with ai.client("alice") as http:
        asset = await upload(http, pid, test_clip)
        # The first chunk succeeds, the second fails once: the retry resumes at the second.
        fake.fail("transcribe", Fault(), Fault(status=502))
        r = await http.post(f"/api/projects/{pid}/ai/subtitles", json={"asset_id": asset["id"]})
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        assert job["cost"] == expected_credits(fake)
    answered = [rec for rec in fake.calls("transcribe") if rec.usage]
    assert sum(rec.usage["seconds"] for rec in answered) <= 32  # each chunk billed once


async def test_not_enough_credits_is_402_and_nothing_runs(
    ai: RunningServer, fake: FakeProviders
) -> None:
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json=TITLES)
        assert r.status_code == 402, r.text
        assert r.json()["error"]["code"] == "insufficient_credits"
        assert (await http.get("/api/jobs")).json() == []
    assert fake.calls("chat") == []


async def test_missing_api_keys_are_a_clear_503(
    tmp_path: Path, database_url: str, fake: FakeProviders, voice_sample: Path
) -> None:
    settings = ai_settings(
        tmp_path, database_url, fake, openai_api_key=None, elevenlabs_api_key=None
    )
    async with run_server(settings) as server:
        await grant(server, "alice", 1000)
        pid = await server.create_project("alice")
        async with server.client("alice") as http:
            answers: list[Any] = [
                await http.post("/api/ai/content", json=TITLES),
                await http.post(f"/api/projects/{pid}/ai/thumbnail", json={"prompt": "x"}),
                await http.post(
                    "/api/voices",
                    data={"name": "v"},
                    files=[("files", ("a.mp3", voice_sample.read_bytes(), "audio/mpeg"))],
                ),
            ]
            assert await balance(http) == FULL
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "provider_not_configured"
    assert "OPENAI_API_KEY" in answers[0].json()["error"]["message"]
    assert "ELEVENLABS_API_KEY" in answers[2].json()["error"]["message"]


async def test_a_queued_job_is_cancelled_at_once(
    tmp_path: Path, database_url: str, fake: FakeProviders
) -> None:
    async with run_server(ai_settings(tmp_path, database_url, fake, jobs_in_process=False)) as s:
        await grant(s, "alice", 1000)
        async with s.client("alice") as http, s.client("bob") as bob:
            job = (await http.post("/api/ai/content", json=TITLES)).json()
            assert (await balance(http))["held"] == job["estimate"] > 0
            assert (await bob.post(f"/api/jobs/{job['id']}/cancel")).status_code == 404
            r = await http.post(f"/api/jobs/{job['id']}/cancel")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "cancelled"
            assert await balance(http) == FULL
            again = await http.post(f"/api/jobs/{job['id']}/cancel")
            assert again.status_code == 409
            assert again.json()["error"]["code"] == "job_finished"
    assert fake.calls("chat") == []


async def test_a_running_job_is_cancelled_and_costs_nothing(
    ai: RunningServer, fake: FakeProviders
) -> None:
    gate = asyncio.Event()
    fake.fail("chat", Fault(gate=gate))
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        job = (await http.post("/api/ai/content", json=TITLES)).json()
        for _ in range(500):
            if fake.calls("chat"):
                break
            await asyncio.sleep(0.02)
        assert fake.calls("chat"), "the job never reached the provider"
        r = await http.post(f"/api/jobs/{job['id']}/cancel")
        assert r.status_code in (200, 202), r.text
        done = await wait_job(http, job["id"])
        gate.set()
        assert done["status"] == "cancelled", done
        assert done["error"]["code"] == "cancelled"
        assert await balance(http) == FULL
        assert await _kinds(http) == ["grant", "hold", "release"]


async def test_jobs_are_visible_to_their_owner_and_project_members_only(
    ai: RunningServer, fake: FakeProviders
) -> None:
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice")
    await ai.add_member("alice", pid, "bob", "viewer")
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json={**TITLES, "project_id": pid})
        job = await wait_job(http, r.json()["id"])
    async with ai.client("bob") as bob, ai.client("mallory") as mallory:
        assert (await bob.get(f"/api/jobs/{job['id']}")).json()["status"] == "succeeded"
        listed = (await bob.get("/api/jobs", params={"project_id": pid})).json()
        assert [j["id"] for j in listed] == [job["id"]]
        assert (await mallory.get(f"/api/jobs/{job['id']}")).status_code == 404
        assert (await mallory.get("/api/jobs", params={"project_id": pid})).json() == []

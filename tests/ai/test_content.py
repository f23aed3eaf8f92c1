"""Text content end to end: the real openai SDK against the fake, structured output, credits."""

from __future__ import annotations

import json

from tests.ai.helpers import balance, expected_credits, grant, wait_job
from tests.support.fake_providers import FakeProviders
from tests.support.server import RunningServer


async def test_titles_are_generated_and_charged_from_reported_usage(
    ai: RunningServer, fake: FakeProviders
) -> None:
    fake.chat_answers["Titles"] = lambda body: {"titles": ["One", "Two", "Three"]}
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        r = await http.post("/api/ai/content", json={"kind": "titles", "brief": "A cat video"})
        assert r.status_code == 202, r.text
        queued = r.json()
        assert queued["status"] == "queued" and queued["estimate"] > 0
        job = await wait_job(http, queued["id"])
        assert job["status"] == "succeeded", job
        assert job["result"] == {"kind": "titles", "content": {"titles": ["One", "Two", "Three"]}}
        assert job["cost"] == expected_credits(fake)
        assert 0 < job["cost"] <= job["estimate"]
        assert await balance(http) == {"balance": 1000 - job["cost"], "held": 0,
                                       "available": 1000 - job["cost"]}  # fmt: skip
    sent = fake.calls("chat")[0].json
    assert sent["response_format"]["json_schema"]["name"] == "Titles"
    assert json.loads(json.dumps(sent["messages"]))[1]["content"].startswith("<brief>")

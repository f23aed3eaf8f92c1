"""Thumbnails and voice clones end to end."""

from __future__ import annotations

from pathlib import Path

from ai.operations.voices import CLONE_PRODUCT
from billing.prices import Meter, PriceTable
from tests.ai.helpers import balance, expected_credits, grant, timeline, upload, wait_job
from tests.support.fake_providers import FakeProviders, tiny_png
from tests.support.server import RunningServer


async def test_thumbnail_becomes_an_asset_and_the_project_thumbnail(
    ai: RunningServer, fake: FakeProviders
) -> None:
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice", title="Baking bread at home")
    async with ai.client("alice") as http:
        r = await http.post(f"/api/projects/{pid}/ai/thumbnail", json={"prompt": "warm kitchen"})
        assert r.status_code == 202, r.text
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "succeeded", job
        doc = await timeline(http, pid)
        link = await http.get(f"/api/projects/{pid}/assets/{job['result']['asset_id']}/url")
        image = await http.get(link.json()["url"])
        assert job["cost"] == expected_credits(fake) > 0
        assert (await balance(http))["balance"] == 1000 - job["cost"]
    assert doc["project"]["thumbnail_asset"] == job["result"]["asset_id"]
    asset = next(a for a in doc["assets"] if a["id"] == job["result"]["asset_id"])
    assert asset["kind"] == "image" and asset["origin"] == "ai:image"
    assert image.status_code == 200 and image.content == tiny_png()
    prompt = fake.calls("image")[0].json["prompt"]
    assert '"Baking bread at home"' in prompt and '"warm kitchen"' in prompt
    assert fake.calls("image")[0].json["model"] == "gpt-image-1"


async def test_voice_clone_is_created_used_for_dubbing_listed_and_deleted(
    ai: RunningServer, fake: FakeProviders, voice_sample: Path, test_clip: Path
) -> None:
    await grant(ai, "alice", 1000)
    data = voice_sample.read_bytes()
    async with ai.client("alice") as http:
        r = await http.post(
            "/api/voices",
            data={"name": "My voice", "description": "narration"},
            files=[("files", ("a.mp3", data, "audio/mpeg")), ("files", ("b.mp3", data, "x/y"))],
        )
        assert r.status_code == 202, r.text
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "succeeded", job
        voice = job["result"]["voice"]
        listed = (await http.get("/api/voices")).json()
        assert [v["id"] for v in listed] == [voice["id"]]
        assert listed[0]["sample_count"] == 2 and listed[0]["name"] == "My voice"
        # Nobody else sees it, or can use it.
        async with ai.client("mallory") as other:
            assert (await other.get("/api/voices")).json() == []
            assert (await other.delete(f"/api/voices/{voice['id']}")).status_code == 404

        pid = await ai.create_project("alice")
        asset = await upload(http, pid, test_clip)
        r = await http.post(
            f"/api/projects/{pid}/ai/dubbing",
            json={"asset_id": asset["id"], "target_language": "fr", "voice_clone_id": voice["id"]},
        )
        dub = await wait_job(http, r.json()["id"], timeout=60)
        assert dub["status"] == "succeeded", dub

        assert (await http.delete(f"/api/voices/{voice['id']}")).status_code == 204
        assert (await http.get("/api/voices")).json() == []
        # A clone is priced as one custom-voice slot; the dub by its own usage.
        clone_price = PriceTable().credits(CLONE_PRODUCT, {Meter.VOICE_CLONES: 1})
        assert job["cost"] == clone_price == 96
        assert dub["cost"] == expected_credits(fake)
        assert (await balance(http))["balance"] == 1000 - job["cost"] - dub["cost"]
    clone = fake.calls("clone")[0]
    assert clone.form["name"] == ["My voice"] and len(clone.files) == 2
    assert {rec.path for rec in fake.calls("tts")} == {
        f"/v1/text-to-speech/{voice['provider_voice_id']}"
    }
    assert fake.calls("voice_delete")[0].path == f"/v1/voices/{voice['provider_voice_id']}"


async def test_voice_samples_are_checked_by_content_not_by_name(
    ai: RunningServer, fake: FakeProviders
) -> None:
    await grant(ai, "alice", 1000)
    async with ai.client("alice") as http:
        r = await http.post(
            "/api/voices",
            data={"name": "Fake"},
            files=[("files", ("voice.mp3", b"#!/bin/sh\necho not audio\n" * 10, "audio/mpeg"))],
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "bad_media"
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}
    assert fake.calls("clone") == []

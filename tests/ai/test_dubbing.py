"""Dubbing end to end: transcribe, translate segment by segment (ids kept), synthesize with
the real elevenlabs SDK against the fake, and an audio track aligned to the segments."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from ai.operations.dubbing import SYSTEM_PROMPT
from tests.ai.helpers import balance, expected_credits, grant, timeline, upload, wait_job
from tests.support.ai_media import BURSTS
from tests.support.fake_providers import FakeProviders
from tests.support.server import RunningServer

TOLERANCE_MS = 200


async def test_dubbing_adds_an_audio_track_aligned_to_the_segments(
    ai: RunningServer, fake: FakeProviders, test_clip: Path
) -> None:
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice")
    async with ai.client("alice") as http:
        asset = await upload(http, pid, test_clip)
        r = await http.post(
            f"/api/projects/{pid}/ai/dubbing",
            json={"asset_id": asset["id"], "target_language": "es", "source_language": "en"},
        )
        assert r.status_code == 202, r.text
        job = await wait_job(http, r.json()["id"], timeout=60)
        assert job["status"] == "succeeded", job
        doc = await timeline(http, pid)
        assert job["cost"] == expected_credits(fake)
        assert 0 < job["cost"] <= job["estimate"]
        assert await balance(http) == {
            "balance": 1000 - job["cost"],
            "held": 0,
            "available": 1000 - job["cost"],
        }
        track_id = job["result"]["track_id"]
        clips = [c for c in doc["clips"] if c["track"] == track_id]
        first_url = await http.get(f"/api/projects/{pid}/assets/{clips[0]['asset']}/url")
        assert first_url.status_code == 200, first_url.text
        audio = await http.get(first_url.json()["url"])

    # Translated segment by segment, ids kept, under a fixed system prompt.
    chats = fake.calls("chat")
    assert len(chats) == 1
    messages = chats[0].json["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = messages[1]["content"]
    assert "<target_language>\nSpanish\n</target_language>" in user
    sent = json.loads(user[user.index("<segments>") + 10 : user.index("</segments>")])
    assert [s["id"] for s in sent] == list(range(len(BURSTS)))

    # One synthesis per segment, in the target language, with the default stock voice.
    tts = fake.calls("tts")
    assert len(tts) == len(BURSTS)
    assert {rec.path for rec in tts} == {"/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb"}
    assert all(rec.json["language_code"] == "es" for rec in tts)
    assert [rec.json["text"] for rec in tts] == job["result"]["translations"]
    assert [f"[es] {s['text']}" for s in sent] == job["result"]["translations"]

    # The dub track: one clip per segment, starting where the segment was said.
    track = next(t for t in doc["tracks"] if t["id"] == track_id)
    assert track["kind"] == "audio" and track["name"] == "Dub (es)"
    assert len(clips) == len(BURSTS)
    assets = {a["id"]: a for a in doc["assets"]}
    for c, (a, _) in zip(clips, BURSTS, strict=True):
        assert abs(c["start_ms"] - a * 1000) <= TOLERANCE_MS
        assert assets[c["asset"]]["origin"] == "ai:tts"
        assert assets[c["asset"]]["uri"].startswith(f"media://projects/{pid}/ai/")
    assert audio.status_code == 200 and audio.content[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")


async def test_dubbing_speech_longer_than_its_slot_is_sped_up_to_fit(
    ai: RunningServer, fake: FakeProviders, test_clip: Path
) -> None:
    fake.speech_seconds_per_char = 0.5  # "[es] tone 1" lasts 5.5 s: longer than any gap
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice")
    async with ai.client("alice") as http:
        asset = await upload(http, pid, test_clip)
        r = await http.post(
            f"/api/projects/{pid}/ai/dubbing",
            json={"asset_id": asset["id"], "target_language": "de"},
        )
        job = await wait_job(http, r.json()["id"], timeout=60)
        assert job["status"] == "succeeded", job
        doc = await timeline(http, pid)
    clips = [c for c in doc["clips"] if c["track"] == job["result"]["track_id"]]
    assert len(clips) == len(BURSTS)
    slots = [b["start_ms"] - a["start_ms"] for a, b in itertools.pairwise(clips)]
    slots.append(BURSTS[-1][1] * 1000 + 1500 - clips[-1]["start_ms"])
    for c, slot in zip(clips, slots, strict=True):
        # 5.5 s of speech, sped up to end where the next segment starts.
        assert slot - 300 <= c["duration_ms"] <= slot + 100, (c, slot)

"""Subtitles end to end: the 30-second clip is uploaded, placed on the timeline, transcribed
in chunks by the real openai SDK against the fake, and written as a subtitle track that a
connected collaborator sees appear, with the job's progress shown as presence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crdt.timeline import ClipKind, TrackKind, add_clip, add_track, read_timeline
from tests.ai.helpers import (
    ai_settings,
    balance,
    expected_credits,
    grant,
    record_job_presence,
    timeline,
    upload,
    wait_job,
)
from tests.support.ai_media import BURSTS
from tests.support.fake_providers import FakeProviders
from tests.support.server import RunningServer, run_server
from tests.support.yclient import YClient

TOLERANCE_MS = 200


async def _place(server: RunningServer, pid: str, asset_id: str) -> str:
    """A clip of the asset's 4 s..24 s window, placed at 60 s on a video track."""

    def change(doc: Any) -> None:
        add_track(doc, TrackKind.VIDEO, "Video", track_id="v1")
        add_clip(
            doc,
            "v1",
            ClipKind.VIDEO,
            start_ms=60_000,
            duration_ms=20_000,
            source_in_ms=4_000,
            asset=asset_id,
            clip_id="clip1",
        )

    await server.services.rooms.edit(pid, change)
    return "clip1"


async def test_subtitles_of_a_clip_are_shifted_onto_the_timeline_and_seen_live(
    ai: RunningServer, fake: FakeProviders, test_clip: Path
) -> None:
    await grant(ai, "alice", 1000)
    pid = await ai.create_project("alice")
    await ai.add_member("alice", pid, "bob", "editor")
    bob = YClient(ai.ws_url(pid, "bob"))
    seen = record_job_presence(bob)
    await bob.connect()
    await bob.wait_synced()
    async with ai.client("alice") as http:
        asset = await upload(http, pid, test_clip)
        assert asset["kind"] == "video"
        assert abs(asset["duration_ms"] - 30_000) < 100
        clip_id = await _place(ai, pid, asset["id"])
        r = await http.post(
            f"/api/projects/{pid}/ai/subtitles", json={"clip_id": clip_id, "language": "en"}
        )
        assert r.status_code == 202, r.text
        job = await wait_job(http, r.json()["id"])
        assert job["status"] == "succeeded", job
        track_id = job["result"]["track_id"]
        doc = await timeline(http, pid)
        assert job["cost"] == expected_credits(fake)
        assert (await balance(http))["balance"] == 1000 - job["cost"]
        srt = await http.get(f"/api/projects/{pid}/subtitles/{track_id}.srt")
        vtt = await http.get(f"/api/projects/{pid}/subtitles/{track_id}.vtt")

    # Several uploads, each under the size limit.
    uploads = fake.calls("transcribe")
    assert len(uploads) >= 2
    assert all(len(f[2]) <= 48_000 for rec in uploads for f in rec.files)
    assert all(rec.form["response_format"] == ["verbose_json"] for rec in uploads)

    # One subtitle clip per burst inside the clip's window, where the clip plays it.
    expected = [(60_000 + (a - 4) * 1000, 60_000 + (b - 4) * 1000) for a, b in BURSTS[1:5]]
    track = next(t for t in doc["tracks"] if t["id"] == track_id)
    assert track["kind"] == "subtitle"
    clips = [c for c in doc["clips"] if c["track"] == track_id]
    assert len(clips) == len(expected), clips
    for c, (start, end) in zip(clips, expected, strict=True):
        assert c["kind"] == "subtitle" and c["text"].startswith("tone")
        assert abs(c["start_ms"] - start) <= TOLERANCE_MS, (c, start)
        assert abs(c["start_ms"] + c["duration_ms"] - end) <= TOLERANCE_MS, (c, end)

    # The collaborator received the track live, and the job's progress as presence.
    live = read_timeline(bob.doc)
    assert len(live.clips_on(track_id)) == len(expected)
    assert any(s["status"] == "running" and 0 < s["progress"] < 1 for s in seen), seen
    assert {s["kind"] for s in seen} == {"ai.subtitles"}
    assert not any('"job"' in s for s in bob.awareness.values())  # withdrawn at the end
    await bob.close()

    assert srt.status_code == 200
    assert srt.text.startswith("1\n00:01:01,0") and srt.text.count(" --> ") == len(expected)
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n00:01:01.0")


async def test_models_without_timestamps_are_sent_one_speech_region_at_a_time(
    tmp_path: Path, database_url: str, fake: FakeProviders, test_clip: Path
) -> None:
    settings = ai_settings(
        tmp_path, database_url, fake, openai_transcribe_model="gpt-4o-mini-transcribe"
    )
    async with run_server(settings) as server:
        await grant(server, "alice", 1000)
        pid = await server.create_project("alice")
        async with server.client("alice") as http:
            asset = await upload(http, pid, test_clip)
            r = await http.post(f"/api/projects/{pid}/ai/subtitles", json={"asset_id": asset["id"]})
            assert r.status_code == 202, r.text
            job = await wait_job(http, r.json()["id"])
            assert job["status"] == "succeeded", job
            doc = await timeline(http, pid)
    assert all(rec.form["response_format"] == ["json"] for rec in fake.calls("transcribe"))
    assert len(fake.calls("transcribe")) == len(BURSTS)
    clips = [c for c in doc["clips"] if c["track"] == job["result"]["track_id"]]
    assert len(clips) == len(BURSTS)
    for c, (a, b) in zip(clips, BURSTS, strict=True):
        assert abs(c["start_ms"] - a * 1000) <= TOLERANCE_MS
        assert abs(c["start_ms"] + c["duration_ms"] - b * 1000) <= TOLERANCE_MS
    # Billed by the seconds of audio sent (the regions), not the whole clip.
    billed = job["usage"]["actual"]["openai/gpt-4o-mini-transcribe"]["audio_seconds"]
    assert billed == sum(-(-c["duration_ms"] // 1000) for c in clips) < 30

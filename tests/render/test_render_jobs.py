"""Render jobs end to end on the local renderer: request, hold, render, capture, deliver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from crdt import timeline as tl
from crdt.timeline import read_timeline
from server.composition.ai import AiServices
from tests.ai.helpers import balance, grant, record_job_presence, timeline, wait_job
from tests.support import media
from tests.support.server import RunningServer
from tests.support.yclient import YClient


def _ai(server: RunningServer) -> AiServices:
    ai = server.services.ai
    assert ai is not None
    return ai


async def _sample_project(server: RunningServer, sources: Path, owner: str = "alice") -> str:
    """The sample timeline in a new project; the red clip is stored media, the rest files."""
    pid = await server.create_project(owner)
    paths = await asyncio.to_thread(media.make_sample_media, sources)
    key = f"projects/{pid}/uploads/red.mp4"
    await _ai(server).media.put_file(key, paths["red"], "video/mp4")
    uris = {name: path.as_uri() for name, path in paths.items()}
    uris["red"] = f"media://{key}"
    await server.services.rooms.edit(pid, lambda doc: media.write_sample(doc, uris))
    return pid


def _stored(server: RunningServer, key: str) -> Path:
    local = _ai(server).local_media
    assert local is not None
    return local.path_for(key)


async def _render(http: httpx.AsyncClient, pid: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/api/projects/{pid}/render", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_render_is_charged_stored_linked_and_seen_live(
    render_server: RunningServer, sources: Path
) -> None:
    server = render_server
    await grant(server, "alice", 1000)
    pid = await _sample_project(server, sources)
    await server.add_member("alice", pid, "bob", "viewer")
    bob = YClient(server.ws_url(pid, "bob"))
    seen = record_job_presence(bob)
    await bob.connect()
    await bob.wait_synced()
    async with server.client("alice") as http:
        queued = await _render(http, pid, resolution="180p", subtitles="stream")
        assert queued["kind"] == "render" and queued["estimate"] > 0
        assert (await balance(http))["held"] == queued["estimate"]
        job = await wait_job(http, queued["id"])
        doc = await timeline(http, pid)
        after = await balance(http)
        link = await http.get(f"/api/projects/{pid}/assets/{job['result']['asset_id']}/url")
        assert link.status_code == 200, link.text
        download = await http.get(link.json()["url"])

    assert job["status"] == "succeeded", job
    result = job["result"]
    assert 0 < job["cost"] <= job["estimate"]
    assert job["usage"]["actual"] == {
        "remotion/lambda-2048mb": {"render_seconds": result["render_seconds"]}
    }
    assert after == {"balance": 1000 - job["cost"], "held": 0, "available": 1000 - job["cost"]}
    assert result["key"] == f"projects/{pid}/renders/{job['id']}.mp4"
    assert result["uri"] == f"media://{result['key']}"
    assert (result["width"], result["height"], result["duration_ms"]) == (320, 180, 4500)
    media.check_sample_render(_stored(server, result["key"]), subtitle_stream=True)
    assert download.status_code == 200
    assert download.content == _stored(server, result["key"]).read_bytes()

    # Linked from the document: a new asset every collaborator received live.
    asset = next(a for a in doc["assets"] if a["id"] == result["asset_id"])
    assert asset["origin"] == "render" and asset["uri"] == result["uri"]
    assert asset["kind"] == "video" and asset["duration_ms"] == 4500
    assert read_timeline(bob.doc).asset(result["asset_id"]) is not None
    assert any(s["stage"] == "rendering" and 0 < s["progress"] < 1 for s in seen), seen
    assert all(s["kind"] == "render" for s in seen)
    assert not any('"job"' in s for s in bob.awareness.values())  # withdrawn at the end
    await bob.close()


def _ffmpeg_of(job_id: str) -> list[int]:
    """Processes whose command line mentions the job's scratch directory."""
    marker = f"flowai-job-{job_id.replace('-', '')[:12]}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


async def test_cancel_kills_the_render_and_releases_the_hold(
    render_server: RunningServer, sources: Path
) -> None:
    server = render_server
    await grant(server, "alice", 1000)
    pid = await server.create_project("alice")
    green = await asyncio.to_thread(media.still, sources / "green.png", "green")

    def long_timeline(doc: Any) -> None:
        track = tl.add_track(doc, "video", "V1")
        asset = tl.add_asset(doc, "image", "green", green.as_uri())
        tl.add_clip(doc, track, "image", start_ms=0, duration_ms=1_800_000, asset=asset)

    await server.services.rooms.edit(pid, long_timeline)
    async with server.client("alice") as http:
        queued = await _render(http, pid, resolution="360p")
        for _ in range(600):  # bounded: at most 30 s
            job = (await http.get(f"/api/jobs/{queued['id']}")).json()
            if job["stage"] == "rendering" and job["progress"] > 0.05:
                break
            await asyncio.sleep(0.05)
        assert job["stage"] == "rendering", job
        assert _ffmpeg_of(job["id"])  # ffmpeg is running
        cancel = await http.post(f"/api/jobs/{job['id']}/cancel")
        assert cancel.status_code in (200, 202), cancel.text
        job = await wait_job(http, job["id"])
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}
        doc = await timeline(http, pid)

    assert job["status"] == "cancelled" and job["cost"] in (None, 0)
    assert _ffmpeg_of(job["id"]) == []
    assert not any(a["origin"] == "render" for a in doc["assets"])
    renders = _stored(server, f"projects/{pid}/renders")
    assert not renders.exists() or list(renders.iterdir()) == []


async def test_failed_render_refunds(render_server: RunningServer, sources: Path) -> None:
    server = render_server
    await grant(server, "alice", 1000)
    pid = await server.create_project("alice")
    broken = sources / "broken.mp4"
    broken.write_bytes(b"this is not a video")

    def broken_timeline(doc: Any) -> None:
        track = tl.add_track(doc, "video", "V1")
        asset = tl.add_asset(doc, "video", "broken", broken.as_uri())
        tl.add_clip(doc, track, "video", start_ms=0, duration_ms=2000, asset=asset)

    await server.services.rooms.edit(pid, broken_timeline)
    async with server.client("alice") as http:
        queued = await _render(http, pid, resolution="180p")
        assert (await balance(http))["held"] == queued["estimate"] > 0
        job = await wait_job(http, queued["id"])
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}
        doc = await timeline(http, pid)

    assert job["status"] == "failed" and job["cost"] in (None, 0)
    assert job["error"]["code"] == "render_failed"
    assert "ffmpeg exited" in job["error"]["message"]
    assert not any(a["origin"] == "render" for a in doc["assets"])


async def test_invalid_timeline_lists_every_problem(
    render_server: RunningServer, sources: Path
) -> None:
    server = render_server
    await grant(server, "alice", 1000)
    pid = await server.create_project("alice")
    other = await server.create_project("mallory")

    def bad(doc: Any) -> None:
        track = tl.add_track(doc, "video", "V1", track_id="v1")
        tl.add_asset(doc, "video", "theirs", f"media://projects/{other}/secret.mp4",
                     asset_id="theirs")  # fmt: skip
        tl.add_asset(doc, "video", "disk", "file:///etc/passwd", asset_id="disk")
        tl.add_asset(doc, "video", "web", "https://example.com/a.mp4", asset_id="web")
        tl.add_clip(doc, track, "video", start_ms=0, duration_ms=1000, asset="theirs")
        tl.add_clip(doc, track, "video", start_ms=1000, duration_ms=1000, asset="disk")
        tl.add_clip(doc, track, "video", start_ms=2000, duration_ms=1000, asset="web")
        tl.add_clip(doc, track, "video", start_ms=2500, duration_ms=1000, clip_id="late")

    await server.services.rooms.edit(pid, bad)
    async with server.client("alice") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={"resolution": "4k"})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_render"
        paths = {p["path"] for p in error["problems"]}
        assert paths == {"clips/late/asset", "clips/late/start_ms", "options/resolution"}

        # Fixed timeline, media the server may not read: every URI is listed.
        await server.services.rooms.edit(pid, lambda doc: tl.delete_clip(doc, "late"))
        response = await http.post(f"/api/projects/{pid}/render", json={})
        assert response.status_code == 422, response.text
        problems = {p["path"]: p["message"] for p in response.json()["error"]["problems"]}
        assert set(problems) == {"assets/theirs/uri", "assets/disk/uri", "assets/web/uri"}
        assert "not media stored for this project" in problems["assets/theirs/uri"]
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}


async def test_roles_and_credits_are_checked_before_queueing(
    render_server: RunningServer, sources: Path
) -> None:
    server = render_server
    pid = await _sample_project(server, sources)
    await server.add_member("alice", pid, "vera", "viewer")
    async with server.client("vera") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={})
        assert response.status_code == 403, response.text
    async with server.client("alice") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={})
        assert response.status_code == 402, response.text
        assert response.json()["error"]["code"] == "insufficient_credits"
    async with server.client("eve") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={})
        assert response.status_code == 404, response.text

"""Version history and live restore over REST, with collaborators connected."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crdt.timeline import add_clip, add_track, move_clip, read_timeline, rename_track
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.yclient import YClient, eventually


def _tl(doc: Any) -> dict[str, Any]:
    return read_timeline(doc).to_json()


async def _label(server: RunningServer, pid: str, label: str) -> int:
    async with server.client("alice") as http:
        r = await http.post(f"/api/projects/{pid}/versions", json={"label": label})
        assert r.status_code == 201, r.text
        version: int = r.json()["version"]
        return version


async def _restore(server: RunningServer, pid: str, version: int, user: str = "alice") -> Any:
    async with server.client(user) as http:
        return await http.post(f"/api/projects/{pid}/versions/{version}/restore")


async def test_label_list_preview_and_live_restore(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Film")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    b = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await b.wait_synced()
    await a.edit(lambda d: add_track(d, "video", "V1", track_id="t1"))
    await a.edit(lambda d: add_clip(d, "t1", "video", start_ms=0, duration_ms=500, clip_id="c1"))
    await eventually(lambda: _tl(b.doc) == _tl(a.doc))
    v1 = await _label(server, pid, "first cut")
    v1_timeline = _tl(a.doc)

    await a.edit(lambda d: move_clip(d, "c1", start_ms=900))
    await b.edit(lambda d: add_clip(d, "t1", "video", start_ms=2000, duration_ms=10, clip_id="c2"))
    await eventually(lambda: _tl(b.doc) == _tl(a.doc) and len(_tl(a.doc)["clips"]) == 2)
    edited = _tl(a.doc)

    async with server.client("alice") as http:
        listing = (await http.get(f"/api/projects/{pid}/versions")).json()
        assert [(v["version"], v["kind"], v["label"]) for v in listing][-1:] == [
            (v1, "labelled", "first cut")
        ]
        preview = (await http.get(f"/api/projects/{pid}/versions/{v1}")).json()
        assert preview["timeline"] == v1_timeline

    response = await _restore(server, pid, v1)
    assert response.status_code == 200, response.text
    body = response.json()
    # Both connected clients converge to the version without reconnecting.
    await eventually(lambda: _tl(a.doc) == v1_timeline and _tl(b.doc) == v1_timeline)
    assert a.close_code is None and b.close_code is None

    # Restoring the restore point undoes the restore.
    assert (await _restore(server, pid, body["restore_point"]["version"])).status_code == 200
    await eventually(lambda: _tl(a.doc) == edited and _tl(b.doc) == edited)
    await a.close()
    await b.close()


async def test_edit_concurrent_with_restore_is_merged(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await a.edit(lambda d: add_track(d, "video", "V1", track_id="t1"))
    await a.edit(lambda d: add_track(d, "audio", "A1", track_id="t2"))
    await eventually(
        lambda: len(read_timeline(server.services.rooms.get(pid).room.doc).tracks) == 2
    )  # type: ignore[union-attr]
    v = await _label(server, pid, "two tracks")
    await a.edit(lambda d: rename_track(d, "t1", "renamed before restore"))
    # A field the restore does not touch, edited while the restore is in flight.
    restore = asyncio.create_task(_restore(server, pid, v))
    await a.edit(lambda d: add_clip(d, "t2", "audio", start_ms=5, duration_ms=5, clip_id="late"))
    assert (await restore).status_code == 200
    checker = await YClient(server.ws_url(pid, "alice")).connect()
    await checker.wait_synced()
    await eventually(lambda: _tl(checker.doc) == _tl(a.doc))
    timeline = read_timeline(a.doc)
    assert timeline.track("t1").name == "V1"  # type: ignore[union-attr]
    # The late clip survives if it reached the server after the restore, or is removed by
    # it if it came first; either way every replica agrees (checked above).
    assert {c.id for c in timeline.clips} <= {"late"}
    await a.close()
    await checker.close()


async def test_concurrent_restores_apply_in_order(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await a.edit(lambda d: add_track(d, "video", "one", track_id="t1"))
    await eventually(lambda: bool(read_timeline(server.services.rooms.get(pid).room.doc).tracks))  # type: ignore[union-attr]
    v_one = await _label(server, pid, "one")
    await a.edit(lambda d: rename_track(d, "t1", "two"))
    await eventually(
        lambda: read_timeline(server.services.rooms.get(pid).room.doc).tracks[0].name == "two"
    )  # type: ignore[union-attr]
    v_two = await _label(server, pid, "two")
    first, second = await asyncio.gather(_restore(server, pid, v_one), _restore(server, pid, v_two))
    assert first.status_code == second.status_code == 200
    points = sorted([first.json()["version"]["version"], second.json()["version"]["version"]])
    last = points[-1]
    async with server.client("alice") as http:
        final = (await http.get(f"/api/projects/{pid}/versions/{last}")).json()["timeline"]
    await eventually(lambda: _tl(a.doc) == final)
    assert final["tracks"][0]["name"] in ("one", "two")
    await a.close()


async def test_restore_errors(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    other = await server.create_project("bob")
    await server.add_member("alice", pid, "val", "viewer")
    async with server.client("bob") as http:
        for label in ("b1", "b2", "b3", "b4"):
            r = await http.post(f"/api/projects/{other}/versions", json={"label": label})
        bobs_version = r.json()["version"]
    async with server.client("alice") as http:
        alices = {v["version"] for v in (await http.get(f"/api/projects/{pid}/versions")).json()}
    assert bobs_version not in alices
    r = await _restore(server, pid, 999)
    assert r.status_code == 404 and r.json()["error"]["code"] == "version_not_found"
    # A version number that exists only in another project is simply not found here.
    r = await _restore(server, pid, bobs_version)
    assert r.status_code == 404 and r.json()["error"]["code"] == "version_not_found"
    # Another user's project: the same answer as a project that does not exist.
    r = await _restore(server, other, bobs_version)
    assert r.status_code == 404 and r.json()["error"]["code"] == "project_not_found"
    v = await _label(server, pid, "x")
    r = await _restore(server, pid, v, user="val")
    assert r.status_code == 403
    async with server.client("alice") as http:
        r = await http.get(f"/api/projects/{pid}/versions/not-a-number")
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


async def test_automatic_versions_and_projection(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        settle_ms=50,
        settle_ms_max=200,
        auto_version_interval_s=3600,
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        a = await YClient(server.ws_url(pid, "alice")).connect()
        await a.wait_synced()
        await a.edit(lambda d: add_track(d, "video", "V", track_id="t1"))
        await a.edit(lambda d: add_clip(d, "t1", "video", start_ms=0, duration_ms=40, clip_id="c1"))

        async def autos() -> int:
            async with server.client("alice") as http:
                listing = (await http.get(f"/api/projects/{pid}/versions")).json()
            return sum(v["kind"] == "auto" for v in listing)

        async def clips() -> list[Any]:
            return list(
                await server.services.db.pool.fetch(
                    "SELECT clip_id, start_ms FROM video_clips WHERE project_id = $1::uuid", pid
                )
            )

        for _ in range(200):
            if await autos() == 1 and [tuple(r) for r in await clips()] == [("c1", 0)]:
                break
            await asyncio.sleep(0.05)
        assert await autos() == 1
        # More edits within the interval: the projection follows, no second automatic version.
        await a.edit(lambda d: move_clip(d, "c1", start_ms=70))
        for _ in range(200):
            if [tuple(r) for r in await clips()] == [("c1", 70)]:
                break
            await asyncio.sleep(0.05)
        assert [tuple(r) for r in await clips()] == [("c1", 70)]
        assert await autos() == 1
        await a.close()

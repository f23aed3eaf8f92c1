"""The SQL projection of the timeline on a real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from pycrdt import Array, Doc, Map

from crdt.timeline import (
    add_asset,
    add_clip,
    add_track,
    delete_clip,
    delete_track,
    new_project_doc,
    read_timeline,
    rename_track,
    set_clip_volume,
    trim_clip,
)
from persistence.db import Database
from persistence.projection import ProjectionResult, project_timeline


async def new_project(db: Database, title: str = "Film") -> uuid.UUID:
    project_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, $2, $3)",
            project_id,
            "alice",
            title,
        )
    return project_id


async def project(db: Database, project_id: uuid.UUID, doc: Doc[Any]) -> ProjectionResult:
    async with db.transaction() as conn:
        return await project_timeline(conn, project_id, read_timeline(doc))


async def tracks(db: Database, project_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    async with db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT * FROM video_tracks WHERE project_id = $1 ORDER BY track_id", project_id
        )
    return {r["track_id"]: dict(r) for r in rows}


async def clips(db: Database, project_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    async with db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT * FROM video_clips WHERE project_id = $1 ORDER BY clip_id", project_id
        )
    return {r["clip_id"]: dict(r) for r in rows}


def replica(doc: Doc[Any]) -> Doc[Any]:
    """As the server holds a document: received as an update (numbers arrive as floats)."""
    other: Doc[Any] = Doc()
    other.apply_update(doc.get_update())
    return other


def film() -> Doc[Any]:
    doc = new_project_doc("Film")
    add_track(doc, "video", "Main", track_id="v1")
    add_track(doc, "subtitle", "Subs", track_id="s1")
    add_asset(doc, "video", "intro.mp4", "s3://media/intro.mp4", asset_id="a1")
    add_clip(doc, "v1", "video", start_ms=0, duration_ms=4000, asset="a1", clip_id="c1")
    add_clip(doc, "v1", "video", start_ms=4000, duration_ms=2000, source_in_ms=250, clip_id="c2")
    add_clip(doc, "s1", "subtitle", start_ms=500, duration_ms=1500, text="Hi", clip_id="c3")
    return replica(doc)


async def test_first_projection_inserts_every_track_and_clip(db: Database) -> None:
    pid = await new_project(db)
    result = await project(db, pid, film())

    assert result == ProjectionResult(inserted=5, updated=0, deleted=0, skipped=0)
    rows = await tracks(db, pid)
    assert set(rows) == {"v1", "s1"}
    assert rows["v1"]["kind"] == "video"
    assert rows["v1"]["name"] == "Main"
    assert rows["v1"]["order_key"] < rows["s1"]["order_key"]
    assert (rows["s1"]["muted"], rows["s1"]["locked"]) == (False, False)
    expected = {
        "c1": ("v1", "video", "a1", 0, 4000, 0, 1.0, None),
        "c2": ("v1", "video", None, 4000, 2000, 250, 1.0, None),
        "c3": ("s1", "subtitle", None, 500, 1500, 0, 1.0, "Hi"),
    }
    columns = (
        "track_id",
        "kind",
        "asset_id",
        "start_ms",
        "duration_ms",
        "source_in_ms",
        "volume",
        "text",
    )
    got = {cid: tuple(row[c] for c in columns) for cid, row in (await clips(db, pid)).items()}
    assert got == expected


async def test_second_projection_of_the_same_timeline_changes_nothing(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    await project(db, pid, doc)
    before = (await tracks(db, pid), await clips(db, pid))

    assert await project(db, pid, doc) == ProjectionResult()
    assert await project(db, pid, replica(doc)) == ProjectionResult()
    assert (await tracks(db, pid), await clips(db, pid)) == before  # updated_at included


async def test_changing_one_field_updates_only_that_row(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    await project(db, pid, doc)
    before = await clips(db, pid)

    trim_clip(doc, "c2", duration_ms=1800)
    result = await project(db, pid, doc)

    assert result == ProjectionResult(updated=1)
    after = await clips(db, pid)
    assert after["c2"]["duration_ms"] == 1800
    assert after["c2"]["updated_at"] > before["c2"]["updated_at"]
    assert after["c2"]["created_at"] == before["c2"]["created_at"]
    for cid in ("c1", "c3"):
        assert after[cid] == before[cid]


async def test_track_rename_and_volume_change_are_updates(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    await project(db, pid, doc)
    rename_track(doc, "s1", "English")
    set_clip_volume(doc, "c1", 0.25)
    assert await project(db, pid, doc) == ProjectionResult(updated=2)
    assert (await tracks(db, pid))["s1"]["name"] == "English"
    assert (await clips(db, pid))["c1"]["volume"] == 0.25


async def test_entities_gone_from_the_timeline_are_deleted(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    await project(db, pid, doc)

    delete_clip(doc, "c1")
    delete_track(doc, "s1")  # takes c3 with it
    add_clip(doc, "v1", "video", start_ms=9000, duration_ms=100, clip_id="c4")
    result = await project(db, pid, doc)

    assert result == ProjectionResult(inserted=1, deleted=3)
    assert set(await tracks(db, pid)) == {"v1"}
    assert set(await clips(db, pid)) == {"c2", "c4"}


async def test_emptied_timeline_deletes_every_row(db: Database) -> None:
    pid = await new_project(db)
    await project(db, pid, film())
    assert await project(db, pid, Doc()) == ProjectionResult(deleted=5)
    assert await tracks(db, pid) == {}
    assert await clips(db, pid) == {}


async def test_other_projects_rows_are_untouched(db: Database) -> None:
    first, second = await new_project(db), await new_project(db)
    await project(db, first, film())
    await project(db, second, film())
    assert await project(db, first, Doc()) == ProjectionResult(deleted=5)
    assert len(await clips(db, second)) == 3
    assert len(await tracks(db, second)) == 2


def scribbled() -> Doc[Any]:
    """The film plus what misbehaving clients wrote with raw pycrdt."""
    src = film()
    tracks_root = src.get("tracks", type=Map)
    clips_root = src.get("clips", type=Map)
    tracks_root["bad-kind"] = Map({"kind": "hologram", "name": "?", "order": "z"})
    tracks_root["t/array"] = Array([1, 2])  # not a map; id contains a slash
    clips_root["on-bad-track"] = Map(
        {"track": "bad-kind", "kind": "video", "start_ms": 0, "duration_ms": 10}
    )
    clips_root["string"] = "not a clip"
    clips_root["no-kind"] = Map({"track": "v1", "start_ms": 0})  # two required fields missing
    clips_root["nested/kind"] = Map({"track": "v1", "kind": 7, "start_ms": 0, "duration_ms": 1})
    # Kept with defaults, not skipped: a bad optional field.
    clips_root["loud"] = Map(
        {"track": "v1", "kind": "audio", "start_ms": 0, "duration_ms": 10, "volume": "max"}
    )
    return replica(src)


async def test_malformed_entries_are_skipped_and_counted(db: Database) -> None:
    pid = await new_project(db)
    result = await project(db, pid, scribbled())

    # bad-kind, t/array, on-bad-track, string, no-kind, nested/kind
    assert result == ProjectionResult(inserted=6, skipped=6)
    assert set(await tracks(db, pid)) == {"v1", "s1"}
    rows = await clips(db, pid)
    assert set(rows) == {"c1", "c2", "c3", "loud"}
    assert rows["loud"]["volume"] == 1.0
    assert await project(db, pid, scribbled()) == ProjectionResult(skipped=6)


async def test_entity_that_turns_malformed_loses_its_row(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    await project(db, pid, doc)
    doc.get("clips", type=Map)["c2"]["kind"] = "hologram"
    assert await project(db, pid, doc) == ProjectionResult(deleted=1, skipped=1)
    assert set(await clips(db, pid)) == {"c1", "c3"}


async def test_nul_characters_cannot_break_the_projection(db: Database) -> None:
    pid = await new_project(db)
    doc = film()
    add_clip(doc, "s1", "subtitle", start_ms=0, duration_ms=5, text="a\x00b", clip_id="c5")
    add_track(doc, "audio", "x", track_id="nul\x00track")
    rename_track(doc, "v1", "Main\x00")
    result = await project(db, pid, doc)
    assert result == ProjectionResult(inserted=6, skipped=1)
    assert (await clips(db, pid))["c5"]["text"] == "a\ufffdb"
    assert (await tracks(db, pid))["v1"]["name"] == "Main\ufffd"
    assert await project(db, pid, doc) == ProjectionResult(skipped=1)


async def test_projection_joins_the_callers_transaction(db: Database) -> None:
    pid = await new_project(db)
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await project_timeline(conn, pid, read_timeline(film()))
        await transaction.rollback()
    assert await tracks(db, pid) == {}
    assert await clips(db, pid) == {}


async def test_large_timeline_is_projected_in_batches(db: Database) -> None:
    pid = await new_project(db)
    doc = new_project_doc("Long")
    for t in range(10):
        add_track(doc, "video", f"T{t}", track_id=f"t{t}")
    for i in range(5000):
        add_clip(doc, f"t{i % 10}", "video", start_ms=i * 10, duration_ms=10, clip_id=f"c{i}")
    assert await project(db, pid, doc) == ProjectionResult(inserted=5010)

    for i in range(0, 5000, 2):
        trim_clip(doc, f"c{i}", duration_ms=5)
    for i in range(1, 1000, 2):
        delete_clip(doc, f"c{i}")
    assert await project(db, pid, doc) == ProjectionResult(updated=2500, deleted=500)
    assert len(await clips(db, pid)) == 4500

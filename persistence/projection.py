"""Mirror a project's timeline into ``video_tracks`` and ``video_clips`` for SQL readers.

The document is the source of truth; these rows are a read model refreshed after edits
settle. ``project_timeline`` writes the difference only: new entities are inserted, changed
ones updated (their ``updated_at`` moves), unchanged ones are not touched, and rows whose
entity left the timeline are deleted. Each table takes one batched statement per kind of
change (arrays passed to ``unnest``), so a 5,000-clip timeline is a handful of round trips.

The ``video_projects`` row takes the document's project fields (title, fps, width, height) and
its ``updated_at`` moves to the time of the projection: it follows the last stored edit, within
the settle delay, so a "recently edited" list can sort on it. A title the row cannot hold
(empty, over 200 characters) keeps the row's title, or is cut to 200 characters.

Only what the reader accepted is projected. Tracks and clips it skipped as malformed are
counted (``skipped``) and, if an earlier projection had a row for them, that row is deleted:
the mirror shows what collaborators see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from crdt.timeline import (
    CLIP_ASSET,
    CLIP_DURATION_MS,
    CLIP_KIND,
    CLIP_SOURCE_IN_MS,
    CLIP_START_MS,
    CLIP_TEXT,
    CLIP_TRACK,
    CLIP_VOLUME,
    ROOT_CLIPS,
    ROOT_TRACKS,
    TRACK_KIND,
    TRACK_LOCKED,
    TRACK_MUTED,
    TRACK_NAME,
    TRACK_ORDER,
    ProjectInfo,
    Timeline,
)
from persistence.db import Connection

__all__ = ["ProjectionResult", "project_row", "project_timeline"]


@dataclass(frozen=True, slots=True)
class ProjectionResult:
    """Rows written by one projection (tracks and clips together), and entries left out."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


_NUL: Final = "\x00"

# Serialises projections of one project (two instances may settle the same room at once), so
# their upserts and deletes cannot deadlock or interleave; held until the caller commits.
_LOCK_SQL: Final = "SELECT pg_advisory_xact_lock(hashtextextended('video_projection:' || $1, 0))"

# ``xmax = 0`` tells a freshly inserted row from one updated by ON CONFLICT; rows the WHERE
# clause left alone (nothing changed) are not returned at all.
_UPSERT_TRACKS: Final = """
INSERT INTO video_tracks AS t (project_id, track_id, kind, name, order_key, muted, locked)
SELECT $1, s.track_id, s.kind, s.name, s.order_key, s.muted, s.locked
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::boolean[])
    AS s (track_id, kind, name, order_key, muted, locked)
ON CONFLICT (project_id, track_id) DO UPDATE SET
    kind = excluded.kind,
    name = excluded.name,
    order_key = excluded.order_key,
    muted = excluded.muted,
    locked = excluded.locked,
    updated_at = now()
WHERE (t.kind, t.name, t.order_key, t.muted, t.locked)
    IS DISTINCT FROM (excluded.kind, excluded.name, excluded.order_key, excluded.muted,
                      excluded.locked)
RETURNING (xmax = 0) AS inserted
"""

_UPSERT_CLIPS: Final = """
INSERT INTO video_clips AS c (project_id, clip_id, track_id, kind, asset_id, start_ms,
                              duration_ms, source_in_ms, volume, text)
SELECT $1, s.clip_id, s.track_id, s.kind, s.asset_id, s.start_ms, s.duration_ms,
       s.source_in_ms, s.volume, s.text
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
            $8::bigint[], $9::float8[], $10::text[])
    AS s (clip_id, track_id, kind, asset_id, start_ms, duration_ms, source_in_ms, volume, text)
ON CONFLICT (project_id, clip_id) DO UPDATE SET
    track_id = excluded.track_id,
    kind = excluded.kind,
    asset_id = excluded.asset_id,
    start_ms = excluded.start_ms,
    duration_ms = excluded.duration_ms,
    source_in_ms = excluded.source_in_ms,
    volume = excluded.volume,
    text = excluded.text,
    updated_at = now()
WHERE (c.track_id, c.kind, c.asset_id, c.start_ms, c.duration_ms, c.source_in_ms, c.volume,
       c.text)
    IS DISTINCT FROM (excluded.track_id, excluded.kind, excluded.asset_id, excluded.start_ms,
                      excluded.duration_ms, excluded.source_in_ms, excluded.volume,
                      excluded.text)
RETURNING (xmax = 0) AS inserted
"""

# A deleted project keeps the row as it was when it was deleted.
_UPDATE_PROJECT: Final = """
UPDATE video_projects SET
    title = coalesce(nullif(left($2::text, 200), ''), title),
    fps = $3,
    width = $4,
    height = $5,
    updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
"""

_DELETE_TRACKS: Final = """
WITH gone AS (
    DELETE FROM video_tracks WHERE project_id = $1 AND track_id <> ALL ($2::text[])
    RETURNING 1
)
SELECT count(*) FROM gone
"""

_DELETE_CLIPS: Final = """
WITH gone AS (
    DELETE FROM video_clips WHERE project_id = $1 AND clip_id <> ALL ($2::text[])
    RETURNING 1
)
SELECT count(*) FROM gone
"""

_FIELDS: Final = {
    ROOT_TRACKS: frozenset({TRACK_KIND, TRACK_NAME, TRACK_ORDER, TRACK_MUTED, TRACK_LOCKED}),
    ROOT_CLIPS: frozenset(
        {
            CLIP_TRACK,
            CLIP_KIND,
            CLIP_ASSET,
            CLIP_START_MS,
            CLIP_DURATION_MS,
            CLIP_SOURCE_IN_MS,
            CLIP_VOLUME,
            CLIP_TEXT,
        }
    ),
}


async def project_timeline(
    conn: Connection, project_id: uuid.UUID, timeline: Timeline
) -> ProjectionResult:
    """Bring the project's ``video_tracks``/``video_clips`` rows in line with ``timeline``.

    Runs in the caller's transaction. The ``video_projects`` row must exist (foreign key).
    """
    await conn.execute(_LOCK_SQL, str(project_id))
    await project_row(conn, project_id, timeline.project)
    tracks = [t for t in timeline.tracks if _NUL not in t.id]
    clips = [c for c in timeline.clips if _NUL not in c.id and _NUL not in c.track]
    unmirrorable = len(timeline.tracks) - len(tracks) + len(timeline.clips) - len(clips)

    track_rows = await conn.fetch(
        _UPSERT_TRACKS,
        project_id,
        [t.id for t in tracks],
        [t.kind.value for t in tracks],
        [_text(t.name) for t in tracks],
        [_text(t.order) for t in tracks],
        [t.muted for t in tracks],
        [t.locked for t in tracks],
    )
    clip_rows = await conn.fetch(
        _UPSERT_CLIPS,
        project_id,
        [c.id for c in clips],
        [c.track for c in clips],
        [c.kind.value for c in clips],
        [_optional_text(c.asset) for c in clips],
        [c.start_ms for c in clips],
        [c.duration_ms for c in clips],
        [c.source_in_ms for c in clips],
        [c.volume for c in clips],
        [_optional_text(c.text) for c in clips],
    )
    deleted_tracks = await conn.fetchval(_DELETE_TRACKS, project_id, [t.id for t in tracks])
    deleted_clips = await conn.fetchval(_DELETE_CLIPS, project_id, [c.id for c in clips])

    written = [*track_rows, *clip_rows]
    inserted = sum(1 for row in written if row["inserted"])
    return ProjectionResult(
        inserted=inserted,
        updated=len(written) - inserted,
        deleted=int(deleted_tracks) + int(deleted_clips),
        skipped=_skipped_entries(timeline) + unmirrorable,
    )


async def project_row(conn: Connection, project_id: uuid.UUID, project: ProjectInfo) -> None:
    """Write the document's project fields into the ``video_projects`` row."""
    await conn.execute(
        _UPDATE_PROJECT,
        project_id,
        _text(project.title),
        project.fps,
        project.width,
        project.height,
    )


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, which a client may have typed: the mirror shows U+FFFD
    in its place (the document keeps the original). An id with NUL could collide with another
    once replaced, so entities with such ids are skipped instead."""
    return value.replace(_NUL, "\ufffd")


def _optional_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _skipped_entries(timeline: Timeline) -> int:
    """How many tracks and clips the reader left out of ``timeline`` as malformed.

    Derived from the problem paths (``root/id`` or ``root/id/field``): an entity with several
    problems counts once, and one that was kept (a bad optional field replaced by its default)
    does not count. A whole timeline root the reader could not use counts as one entry.
    """
    kept = {
        ROOT_TRACKS: {t.id for t in timeline.tracks},
        ROOT_CLIPS: {c.id for c in timeline.clips},
    }
    skipped: set[tuple[str, str | None]] = set()
    for problem in timeline.problems:
        root, slash, rest = problem.path.partition("/")
        if root not in kept:
            continue
        if not slash:
            skipped.add((root, None))
            continue
        # Ids may contain "/" too: the problem belongs to a kept entity if its path names one;
        # otherwise the entity is the path without a trailing field name, if it has one.
        head, _, field = rest.rpartition("/")
        if rest in kept[root] or (field in _FIELDS[root] and head in kept[root]):
            continue
        entity = head if head and field in _FIELDS[root] else rest
        skipped.add((root, entity))
    return len(skipped)

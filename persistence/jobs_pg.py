"""``ai.ports.JobStore`` and ``VoiceStore`` on PostgreSQL, and the job queue's schema.

Job status moves only forward: every write names the statuses it may start from, so a late
write (a worker finishing a job the user just cancelled) changes nothing, and a trigger keeps
final statuses final even if this code were wrong. User-facing reads run under the caller's
identity (row-level security).
"""

from __future__ import annotations

import json
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ai.ports import JobRecord, JobStatus, VoiceClone
from persistence.supabase import apply_supabase_access

if TYPE_CHECKING:
    import asyncpg

    from persistence.db import Database

__all__ = ["PgJobStore", "PgVoiceStore", "ensure_queue_schema"]

_JSON_COLUMNS: Final = frozenset({"input", "result", "error", "usage", "checkpoint"})
_UPDATABLE: Final = frozenset(
    {
        "status",
        "stage",
        "progress",
        "result",
        "error",
        "cost",
        "usage",
        "queue_job_id",
        "attempts",
    }
)
_FINAL: Final = ("succeeded", "failed", "cancelled")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _record(row: asyncpg.Record) -> JobRecord:
    return JobRecord(
        id=row["id"],
        kind=row["kind"],
        user_id=row["user_id"],
        project_id=row["project_id"],
        status=JobStatus(row["status"]),
        stage=row["stage"],
        progress=float(row["progress"]),
        input=_loads(row["input"]) or {},
        result=_loads(row["result"]),
        error=_loads(row["error"]),
        estimate=int(row["estimate"]),
        cost=row["cost"],
        hold_id=row["hold_id"],
        usage=_loads(row["usage"]),
        attempts=int(row["attempts"]),
        cancel_requested=bool(row["cancel_requested"]),
        queue_job_id=row["queue_job_id"],
        checkpoint=_loads(row["checkpoint"]) or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _assignments(fields: dict[str, Any], first: int) -> tuple[str, list[Any]]:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update job field(s): {', '.join(sorted(unknown))}")
    parts, args = [], []
    for i, (name, value) in enumerate(sorted(fields.items()), start=first):
        if name in _JSON_COLUMNS:
            parts.append(f"{name} = ${i}::jsonb")
            args.append(_json(value))
        else:
            parts.append(f"{name} = ${i}")
            args.append(value.value if isinstance(value, JobStatus) else value)
    return ", ".join(parts), args


class PgJobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, record: JobRecord) -> None:
        await self._db.execute(
            """INSERT INTO jobs (id, kind, user_id, project_id, status, stage, progress, input,
                                 estimate, hold_id, usage, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12, $12)""",
            record.id,
            record.kind,
            record.user_id,
            record.project_id,
            record.status.value,
            record.stage,
            record.progress,
            _json(record.input),
            record.estimate,
            record.hold_id,
            _json(record.usage),
            record.created_at,
        )

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        row = await self._db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return _record(row) if row is not None else None

    async def get_as(self, user_id: str, job_id: uuid.UUID) -> JobRecord | None:
        async with self._db.as_user(user_id) as conn:
            row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        return _record(row) if row is not None else None

    async def list_as(
        self, user_id: str, *, project_id: uuid.UUID | None, limit: int
    ) -> list[JobRecord]:
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch(
                """SELECT * FROM jobs
                   WHERE ($1::uuid IS NULL AND user_id = $2) OR project_id = $1
                   ORDER BY created_at DESC LIMIT $3""",
                project_id,
                user_id,
                limit,
            )
        return [_record(r) for r in rows]

    async def claim(self, job_id: uuid.UUID, attempt: int) -> JobRecord | None:
        row = await self._db.fetchrow(
            """UPDATE jobs SET status = 'running', attempts = $2, stage = 'started',
                              started_at = coalesce(started_at, now()), updated_at = now()
               WHERE id = $1 AND status IN ('queued', 'running') AND NOT cancel_requested
               RETURNING *""",
            job_id,
            attempt + 1,
        )
        return _record(row) if row is not None else None

    async def update(self, job_id: uuid.UUID, **fields: Any) -> bool:
        assignments, args = _assignments(fields, first=2)
        result = await self._db.execute(
            f"""UPDATE jobs SET {assignments}, updated_at = now()
                WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled')""",
            job_id,
            *args,
        )
        return str(result).endswith(" 1")

    async def progress(self, job_id: uuid.UUID, progress: float, stage: str) -> bool:
        cancel = await self._db.fetchval(
            """UPDATE jobs SET progress = greatest(progress, $2), stage = $3, updated_at = now()
               WHERE id = $1 AND status = 'running'
               RETURNING cancel_requested""",
            job_id,
            progress,
            stage,
        )
        if cancel is None:
            # No longer running: a recovery or a cancel moved it on; stop working on it.
            current = await self.get(job_id)
            return current is None or current.status.final or current.cancel_requested
        return bool(cancel)

    async def save_checkpoint(self, job_id: uuid.UUID, name: str, value: Any) -> None:
        await self._db.execute(
            """UPDATE jobs SET checkpoint = jsonb_set(checkpoint, ARRAY[$2], $3::jsonb),
                              updated_at = now()
               WHERE id = $1""",
            job_id,
            name,
            _json(value),
        )

    async def finish(self, job_id: uuid.UUID, status: JobStatus, **fields: Any) -> bool:
        if not status.final:
            raise ValueError(f"{status} is not a final status")
        assignments, args = _assignments({**fields, "status": status}, first=2)
        result = await self._db.execute(
            f"""UPDATE jobs SET {assignments}, finished_at = now(), updated_at = now()
                WHERE id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled')""",
            job_id,
            *args,
        )
        return str(result).endswith(" 1")

    async def request_cancel(self, job_id: uuid.UUID, user_id: str) -> JobRecord | None:
        row = await self._db.fetchrow(
            """UPDATE jobs SET cancel_requested = true, updated_at = now()
               WHERE id = $1 AND user_id = $2 AND status IN ('queued', 'running')
               RETURNING *""",
            job_id,
            user_id,
        )
        return _record(row) if row is not None else None

    async def stuck(self, idle_s: float, limit: int) -> list[JobRecord]:
        rows = await self._db.fetch(
            """SELECT j.* FROM jobs j
               WHERE j.status IN ('queued', 'running')
                 AND j.updated_at < now() - make_interval(secs => $1)
                 AND NOT EXISTS (
                     SELECT 1 FROM procrastinate_jobs q
                     WHERE q.id = j.queue_job_id AND q.status IN ('todo', 'doing'))
               ORDER BY j.updated_at LIMIT $2""",
            idle_s,
            limit,
        )
        return [_record(r) for r in rows]


def _voice(row: asyncpg.Record) -> VoiceClone:
    return VoiceClone(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        description=row["description"],
        provider=row["provider"],
        provider_voice_id=row["provider_voice_id"],
        sample_count=row["sample_count"],
        job_id=row["job_id"],
        created_at=row["created_at"],
    )


class PgVoiceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, voice: VoiceClone) -> VoiceClone:
        row = await self._db.fetchrow(
            """INSERT INTO voice_clones (id, user_id, name, description, provider,
                                         provider_voice_id, sample_count, job_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (job_id) DO NOTHING
               RETURNING *""",
            voice.id,
            voice.user_id,
            voice.name,
            voice.description,
            voice.provider,
            voice.provider_voice_id,
            voice.sample_count,
            voice.job_id,
        )
        if row is None:
            row = await self._db.fetchrow(
                "SELECT * FROM voice_clones WHERE job_id = $1", voice.job_id
            )
        assert row is not None
        return _voice(row)

    async def list_for(self, user_id: str) -> list[VoiceClone]:
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch("SELECT * FROM voice_clones ORDER BY created_at DESC")
        return [_voice(r) for r in rows]

    async def get_for(self, user_id: str, voice_id: uuid.UUID) -> VoiceClone | None:
        async with self._db.as_user(user_id) as conn:
            row = await conn.fetchrow("SELECT * FROM voice_clones WHERE id = $1", voice_id)
        return _voice(row) if row is not None else None

    async def delete(self, user_id: str, voice_id: uuid.UUID) -> bool:
        result = await self._db.execute(
            "DELETE FROM voice_clones WHERE id = $1 AND user_id = $2", voice_id, user_id
        )
        return str(result).endswith(" 1")


# -- The job queue's schema -----------------------------------------------------------------

_QUEUE_SCHEMA_LOCK: Final = 0x466C6F78  # beside the migrations' lock


def _queue_migrations() -> list[tuple[str, str]]:
    from procrastinate.schema import SchemaManager

    directory = Path(SchemaManager.get_migrations_path())
    return sorted((p.name, p.read_text()) for p in directory.glob("*.sql"))


async def ensure_queue_schema(db: Database) -> list[str]:
    """Install procrastinate's schema, or apply its migrations newer than the recorded one.

    Idempotent and safe from several processes at once (advisory lock); runs after our own
    migrations, from ``flowai migrate``, server start-up and ``flowai worker``.
    """
    from procrastinate.schema import SchemaManager

    migrations = _queue_migrations()
    latest = migrations[-1][0] if migrations else ""
    async with db.transaction() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _QUEUE_SCHEMA_LOCK)
        recorded = await conn.fetchval("SELECT migration FROM job_queue_schema")
        installed = await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        applied: list[str] = []
        if not installed:
            await conn.execute(SchemaManager.get_schema())
            applied.append("schema.sql")
        elif recorded is not None:
            for name, sql in migrations:
                if name > recorded:
                    await conn.execute(sql)
                    applied.append(name)
        if recorded != latest:
            await conn.execute(
                """INSERT INTO job_queue_schema (id, migration) VALUES (true, $1)
                   ON CONFLICT (id) DO UPDATE SET migration = $1, updated_at = now()""",
                latest,
            )
        if applied:  # On Supabase, its API roles were just given rights on the new tables.
            await apply_supabase_access(conn)
    return applied


def queue_schema_sql() -> str:
    """procrastinate's full schema (for inspection and tests)."""
    return (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")

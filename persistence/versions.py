"""Version history: full document states, automatic, labelled, and around restores."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from persistence.db import Connection, Database


class VersionKind(StrEnum):
    AUTO = "auto"
    LABELLED = "labelled"
    RESTORE_POINT = "restore_point"
    RESTORE = "restore"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    kind: VersionKind
    label: str | None
    created_by: str | None
    restored_from: int | None
    size_bytes: int
    created_at: datetime


_INFO_COLUMNS = (
    "version, kind, label, created_by, restored_from, octet_length(payload) AS size_bytes, "
    "created_at"
)


def _info(row: object) -> VersionInfo:
    r = dict(row)  # type: ignore[call-overload]
    return VersionInfo(
        r["version"],
        VersionKind(r["kind"]),
        r["label"],
        r["created_by"],
        r["restored_from"],
        r["size_bytes"],
        r["created_at"],
    )


class PgVersions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _lock(self, conn: Connection, project_id: uuid.UUID) -> None:
        # Numbers are per project and gap-free: serialise their allocation.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"versions:{project_id}")

    async def _insert(
        self,
        conn: Connection,
        project_id: uuid.UUID,
        kind: VersionKind,
        state: bytes,
        *,
        label: str | None,
        created_by: str | None,
        restored_from: int | None,
    ) -> VersionInfo:
        row = await conn.fetchrow(
            f"""INSERT INTO doc_versions
                  (project_id, version, kind, label, payload, created_by, restored_from)
                SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6
                  FROM doc_versions WHERE project_id = $1
                RETURNING {_INFO_COLUMNS}""",
            project_id,
            kind.value,
            label,
            state,
            created_by,
            restored_from,
        )
        return _info(row)

    async def create(
        self,
        project_id: uuid.UUID,
        kind: VersionKind,
        state: bytes,
        *,
        label: str | None = None,
        created_by: str | None = None,
        restored_from: int | None = None,
    ) -> VersionInfo:
        async with self._db.transaction() as conn:
            await self._lock(conn, project_id)
            return await self._insert(
                conn,
                project_id,
                kind,
                state,
                label=label,
                created_by=created_by,
                restored_from=restored_from,
            )

    async def create_auto_if_due(
        self, project_id: uuid.UUID, state: bytes, interval_s: int
    ) -> VersionInfo | None:
        """An automatic version, unless one was taken within ``interval_s`` (any instance)."""
        async with self._db.transaction() as conn:
            await self._lock(conn, project_id)
            recent = await conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM doc_versions WHERE project_id = $1
                     AND kind = 'auto' AND created_at > now() - make_interval(secs => $2))""",
                project_id,
                float(interval_s),
            )
            if recent:
                return None
            latest = await conn.fetchval(
                """SELECT payload FROM doc_versions WHERE project_id = $1
                   ORDER BY version DESC LIMIT 1""",
                project_id,
            )
            if latest is not None and bytes(latest) == state:
                return None  # nothing changed since the last version
            return await self._insert(
                conn,
                project_id,
                VersionKind.AUTO,
                state,
                label=None,
                created_by=None,
                restored_from=None,
            )

    async def list(self, user_id: str, project_id: uuid.UUID) -> list[VersionInfo]:
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch(
                f"SELECT {_INFO_COLUMNS} FROM doc_versions WHERE project_id = $1 "
                "ORDER BY version DESC",
                project_id,
            )
        return [_info(r) for r in rows]

    async def get(
        self, user_id: str, project_id: uuid.UUID, version: int
    ) -> tuple[VersionInfo, bytes] | None:
        """A version and its state, if ``user_id`` may read it (row-level security)."""
        async with self._db.as_user(user_id) as conn:
            row = await conn.fetchrow(
                f"SELECT {_INFO_COLUMNS}, payload FROM doc_versions "
                "WHERE project_id = $1 AND version = $2",
                project_id,
                version,
            )
        if row is None:
            return None
        return _info(row), bytes(row["payload"])

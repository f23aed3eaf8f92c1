"""Projects and members on PostgreSQL (implements ``persistence.projects.ProjectDirectory``)."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from crdt.timeline import ProjectInfo
from persistence.db import Database
from persistence.projection import project_row
from persistence.projects import Member, Project, ProjectNotFound, Role

_PROJECT_COLUMNS = "id, title, owner_id, created_at, updated_at, fps, width, height"


# Live rooms keep their project's member list up to this size.
MEMBERS_KEPT_MAX = 10_000


def _project(row: asyncpg.Record) -> Project:
    return Project(
        row["id"],
        row["title"],
        row["owner_id"],
        row["created_at"],
        row["updated_at"],
        row["fps"],
        row["width"],
        row["height"],
    )


class _AccessBatch:
    """Users waiting for one membership query of one project."""

    def __init__(self) -> None:
        self.users: dict[str, list[asyncio.Future[tuple[bool, Role | None]]]] = {}
        self.started = False

    async def wait(self, user_id: str) -> tuple[bool, Role | None]:
        future: asyncio.Future[tuple[bool, Role | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self.users.setdefault(user_id, []).append(future)
        return await future

    def resolve(self, exists: bool, roles: dict[str, Role | None]) -> None:
        for user_id, futures in self.users.items():
            for future in futures:
                if not future.done():
                    future.set_result((exists, roles.get(user_id)))

    def fail(self, exc: BaseException) -> None:
        for futures in self.users.values():
            for future in futures:
                if not future.done():
                    future.set_exception(exc)


class PgProjectDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._access_batches: dict[uuid.UUID, _AccessBatch] = {}
        self._access_tasks: set[asyncio.Task[None]] = set()

    async def create_project(self, owner_id: str, title: str) -> Project:
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO video_projects (id, owner_id, title) VALUES ($1, $2, $3) "
                f"RETURNING {_PROJECT_COLUMNS}",
                uuid.uuid4(),
                owner_id,
                title,
            )
            assert row is not None
            await conn.execute(
                "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'owner')",
                row["id"],
                owner_id,
            )
        return _project(row)

    async def get_project(self, project_id: uuid.UUID) -> Project | None:
        row = await self._db.fetchrow(
            f"SELECT {_PROJECT_COLUMNS} FROM video_projects WHERE id = $1 AND deleted_at IS NULL",
            project_id,
        )
        return _project(row) if row is not None else None

    async def list_projects(self, user_id: str) -> list[tuple[Project, Role]]:
        # Runs under the caller's identity: row-level security decides what is visible; the
        # join starts from the caller's memberships (index on user_id) and brings the role.
        columns = ", ".join(f"p.{c}" for c in _PROJECT_COLUMNS.split(", "))
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch(
                f"""SELECT {columns}, m.role FROM project_members m
                    JOIN video_projects p ON p.id = m.project_id
                    WHERE m.user_id = $1 AND p.deleted_at IS NULL
                    ORDER BY p.updated_at DESC, p.id""",
                user_id,
            )
        return [(_project(r), Role(r["role"])) for r in rows]

    async def mirror_project(self, project_id: uuid.UUID, info: ProjectInfo) -> None:
        async with self._db.connection() as conn:
            await project_row(conn, project_id, info)

    async def list_members(self, project_id: uuid.UUID) -> list[Member]:
        rows = await self._db.fetch(
            """SELECT user_id, role, created_at FROM project_members WHERE project_id = $1
               ORDER BY role <> 'owner', created_at, user_id""",
            project_id,
        )
        return [Member(r["user_id"], Role(r["role"]), r["created_at"]) for r in rows]

    async def delete_project(self, project_id: uuid.UUID) -> list[str] | None:
        async with self._db.transaction() as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM video_projects WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                project_id,
            )
            if found is None:
                return None
            rows = await conn.fetch(
                "DELETE FROM project_members WHERE project_id = $1 RETURNING user_id, role",
                project_id,
            )
            kept = [{"user_id": r["user_id"], "role": r["role"]} for r in rows]
            await conn.execute(
                """UPDATE video_projects SET deleted_at = now(), deleted_members = $2::jsonb
                   WHERE id = $1""",
                project_id,
                json.dumps(kept),
            )
        return [r["user_id"] for r in rows]

    async def role_of(self, project_id: uuid.UUID, user_id: str) -> Role | None:
        role = await self._db.fetchval(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
            project_id,
            user_id,
        )
        return Role(role) if role is not None else None

    async def access(self, project_id: uuid.UUID, user_id: str) -> tuple[bool, Role | None]:
        """The join path of every websocket. A join storm (a class opening one project at
        once) would queue hundreds of identical lookups on the pool; instead, lookups for a
        project that arrive before its pending query starts go together in that one query
        (group commit, for reads). A query starts on the loop's next turn, without waiting for
        an earlier one still in flight: under a storm every wait costs a congested loop turn."""
        batch = self._access_batches.get(project_id)
        if batch is None or batch.started:
            batch = _AccessBatch()
            self._access_batches[project_id] = batch
            task = asyncio.create_task(self._run_access(project_id, batch))
            self._access_tasks.add(task)
            task.add_done_callback(self._access_tasks.discard)
        return await batch.wait(user_id)

    async def _run_access(self, project_id: uuid.UUID, batch: _AccessBatch) -> None:
        batch.started = True  # later lookups form the next batch
        if self._access_batches.get(project_id) is batch:
            del self._access_batches[project_id]
        try:
            rows = await self._db.fetch(
                """SELECT u.user_id, m.role FROM video_projects p
                   CROSS JOIN unnest($2::text[]) AS u(user_id)
                   LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = u.user_id
                   WHERE p.id = $1 AND p.deleted_at IS NULL""",
                project_id,
                list(batch.users),
            )
        except asyncio.CancelledError as exc:
            batch.fail(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, raised there
            batch.fail(exc)
        else:
            roles = {r["user_id"]: Role(r["role"]) if r["role"] else None for r in rows}
            batch.resolve(bool(rows), roles)

    async def members(self, doc_id: str) -> dict[str, bool] | None:
        """``crdt.ports.Membership``: every member and whether they may edit (None beyond
        ``MEMBERS_KEPT_MAX``, where joins go back to one query each)."""
        rows = await self._db.fetch(
            "SELECT user_id, role FROM project_members WHERE project_id = $1 LIMIT $2",
            uuid.UUID(doc_id),
            MEMBERS_KEPT_MAX + 1,
        )
        if len(rows) > MEMBERS_KEPT_MAX:
            return None
        return {r["user_id"]: Role(r["role"]).can_edit for r in rows}

    async def set_member(self, project_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        async with self._db.transaction() as conn:
            current = await conn.fetchval(
                "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2 "
                "FOR UPDATE",
                project_id,
                user_id,
            )
            if current == Role.OWNER:
                raise ValueError("the owner's role cannot be changed")
            if role is None:
                await conn.execute(
                    "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
                    project_id,
                    user_id,
                )
                return
            try:
                await conn.execute(
                    """INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)
                       ON CONFLICT (project_id, user_id)
                       DO UPDATE SET role = EXCLUDED.role, updated_at = now()""",
                    project_id,
                    user_id,
                    role.value,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise ProjectNotFound(str(project_id)) from exc

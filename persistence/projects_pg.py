"""Projects and members on PostgreSQL (implements ``persistence.projects.ProjectDirectory``)."""

from __future__ import annotations

import uuid

import asyncpg

from persistence.db import Database
from persistence.projects import Project, ProjectNotFound, Role

_PROJECT_COLUMNS = "id, title, owner_id, created_at, updated_at"


def _project(row: asyncpg.Record) -> Project:
    return Project(row["id"], row["title"], row["owner_id"], row["created_at"], row["updated_at"])


class PgProjectDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        row = await self._db.pool.fetchrow(
            f"SELECT {_PROJECT_COLUMNS} FROM video_projects WHERE id = $1", project_id
        )
        return _project(row) if row is not None else None

    async def list_projects(self, user_id: str) -> list[Project]:
        # Runs under the caller's identity: row-level security decides what is visible.
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch(
                f"SELECT {_PROJECT_COLUMNS} FROM video_projects ORDER BY updated_at DESC, id"
            )
        return [_project(r) for r in rows]

    async def role_of(self, project_id: uuid.UUID, user_id: str) -> Role | None:
        role = await self._db.pool.fetchval(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
            project_id,
            user_id,
        )
        return Role(role) if role is not None else None

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

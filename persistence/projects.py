"""Projects and their members: the port the server uses, independent of storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from crdt.timeline import ProjectInfo


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def can_edit(self) -> bool:
        return self is not Role.VIEWER


@dataclass(frozen=True, slots=True)
class Project:
    """A project's row: its fields mirror the document's (the projection writes them), and
    ``updated_at`` is the time of its last stored edit, within the settle delay."""

    id: uuid.UUID
    title: str
    owner_id: str
    created_at: datetime
    updated_at: datetime
    # Unknown until the document's first projection.
    fps: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    role: Role
    created_at: datetime


class ProjectNotFound(LookupError):
    pass


class ProjectDirectory(Protocol):
    """Who may open which project. Reads run as ``user_id`` (row-level security in Postgres)."""

    async def create_project(self, owner_id: str, title: str) -> Project: ...

    async def get_project(self, project_id: uuid.UUID) -> Project | None:
        """Any project by id, regardless of caller (the websocket's existence check)."""
        ...

    async def list_projects(self, user_id: str) -> list[tuple[Project, Role]]:
        """The user's projects with their role in each, most recently edited first."""
        ...

    async def role_of(self, project_id: uuid.UUID, user_id: str) -> Role | None: ...

    async def access(self, project_id: uuid.UUID, user_id: str) -> tuple[bool, Role | None]:
        """Whether the project exists, and the user's role in it: one round trip."""
        ...

    async def set_member(self, project_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        """Add, change or (with ``None``) remove a member. The owner cannot be changed."""
        ...

    async def mirror_project(self, project_id: uuid.UUID, info: ProjectInfo) -> None:
        """Write the document's project fields into the row now (what the projection does
        once edits settle), so the caller that changed them reads them back at once."""
        ...

    async def list_members(self, project_id: uuid.UUID) -> list[Member]:
        """Every member, the owner first."""
        ...

    async def delete_project(self, project_id: uuid.UUID) -> list[str] | None:
        """Soft delete: hide the project from every read and join, keeping its document,
        versions, jobs and ledger entries. The members it had, or None if there was no such
        (live) project."""
        ...

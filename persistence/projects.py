"""Projects and their members: the port the server uses, independent of storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def can_edit(self) -> bool:
        return self is not Role.VIEWER


@dataclass(frozen=True, slots=True)
class Project:
    id: uuid.UUID
    title: str
    owner_id: str
    created_at: datetime
    updated_at: datetime


class ProjectNotFound(LookupError):
    pass


class ProjectDirectory(Protocol):
    """Who may open which project. Reads run as ``user_id`` (row-level security in Postgres)."""

    async def create_project(self, owner_id: str, title: str) -> Project: ...

    async def get_project(self, project_id: uuid.UUID) -> Project | None:
        """Any project by id, regardless of caller (the websocket's existence check)."""
        ...

    async def list_projects(self, user_id: str) -> list[Project]: ...

    async def role_of(self, project_id: uuid.UUID, user_id: str) -> Role | None: ...

    async def access(self, project_id: uuid.UUID, user_id: str) -> tuple[bool, Role | None]:
        """Whether the project exists, and the user's role in it: one round trip."""
        ...

    async def set_member(self, project_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        """Add, change or (with ``None``) remove a member. The owner cannot be changed."""
        ...

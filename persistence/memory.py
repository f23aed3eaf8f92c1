"""In-memory twins of the storage ports, for unit tests and storage-free runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pycrdt import merge_updates

from persistence.projects import Project, ProjectNotFound, Role


class MemoryDocumentStore:
    def __init__(self) -> None:
        self.updates: dict[str, list[bytes]] = {}
        self.unload_count = 0

    async def load(self, doc_id: str) -> Sequence[bytes]:
        return list(self.updates.get(doc_id, ()))

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        self.updates.setdefault(doc_id, []).extend(updates)

    async def compact(self, doc_id: str) -> int:
        """Merge the log into one update; returns how many entries were merged."""
        log = self.updates.get(doc_id, [])
        if len(log) > 1:
            self.updates[doc_id] = [merge_updates(*log)]
        return len(log)

    async def unloaded(self, doc_id: str, state: bytes) -> None:
        await self.compact(doc_id)
        self.unload_count += 1


class MemoryProjectDirectory:
    def __init__(self) -> None:
        self._projects: dict[uuid.UUID, Project] = {}
        self._members: dict[uuid.UUID, dict[str, Role]] = {}

    async def create_project(self, owner_id: str, title: str) -> Project:
        now = datetime.now(UTC)
        project = Project(uuid.uuid4(), title, owner_id, now, now)
        self._projects[project.id] = project
        self._members[project.id] = {owner_id: Role.OWNER}
        return project

    async def get_project(self, project_id: uuid.UUID) -> Project | None:
        return self._projects.get(project_id)

    async def list_projects(self, user_id: str) -> list[Project]:
        return [p for p in self._projects.values() if user_id in self._members[p.id]]

    async def role_of(self, project_id: uuid.UUID, user_id: str) -> Role | None:
        return self._members.get(project_id, {}).get(user_id)

    async def access(self, project_id: uuid.UUID, user_id: str) -> tuple[bool, Role | None]:
        return project_id in self._projects, await self.role_of(project_id, user_id)

    async def members(self, doc_id: str) -> dict[str, bool] | None:
        members = self._members.get(uuid.UUID(doc_id), {})
        return {user_id: role.can_edit for user_id, role in members.items()}

    async def set_member(self, project_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        members = self._members.get(project_id)
        if members is None:
            raise ProjectNotFound(str(project_id))
        if members.get(user_id) is Role.OWNER:
            raise ValueError("the owner's role cannot be changed")
        if role is None:
            members.pop(user_id, None)
        else:
            members[user_id] = role

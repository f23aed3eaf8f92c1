"""Membership lookups of a join storm share queries and still answer each user exactly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from persistence.db import Database
from persistence.projects import Role
from persistence.projects_pg import PgProjectDirectory


class CountingDirectory(PgProjectDirectory):
    queries = 0

    async def _run_access(self, project_id: uuid.UUID, batch: Any) -> None:
        self.queries += 1
        await super()._run_access(project_id, batch)


async def test_concurrent_lookups_are_batched_and_exact(db: Database) -> None:
    directory = CountingDirectory(db)
    project = await directory.create_project("owner", "storm")
    for i in range(0, 60, 2):
        await directory.set_member(project.id, f"u{i}", Role.EDITOR if i % 4 else Role.VIEWER)
    users = [f"u{i}" for i in range(60)] + ["owner", "stranger"]
    answers = await asyncio.gather(*(directory.access(project.id, u) for u in users * 3))
    expected = {
        f"u{i}": (Role.EDITOR if i % 4 else Role.VIEWER) if i % 2 == 0 else None for i in range(60)
    }
    expected |= {"owner": Role.OWNER, "stranger": None}
    for user, (exists, role) in zip(users * 3, answers, strict=True):
        assert exists and role == expected[user], user
    # 186 lookups made in one turn of the loop: one query.
    assert directory.queries == 1
    missing = await asyncio.gather(*(directory.access(uuid.uuid4(), "owner") for _ in range(5)))
    assert missing == [(False, None)] * 5
    # Nothing is left behind between storms.
    assert not directory._access_batches

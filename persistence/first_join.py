"""The join that opens a cold room: its member list and its document in one statement.

Implements ``crdt.ports.FirstJoinReader``. Every joiner of a storm on a cold room waits for
this read, and under a storm each round trip costs a turn of a busy event loop; as one
statement it is one round trip and one snapshot, where the member list then the document took
two. The document's rows are read only if the joiner is a member: the test is an uncorrelated
``EXISTS``, which PostgreSQL evaluates once, before the scans it guards (a one-time filter).
"""

from __future__ import annotations

import uuid

from crdt.ports import FirstJoin
from persistence.db import Database
from persistence.projects import Role
from persistence.projects_pg import MEMBERS_KEPT_MAX

# Rows in order: the member list (part 0), a marker if the joiner is a member (1), then the
# document as ``PgDocumentStore.load`` reads it: compacted state (2), log in order (3).
_READ = """
SELECT part, user_id, role, payload FROM (
    SELECT 0 AS part, 0::bigint AS seq, m.user_id, m.role, NULL::bytea AS payload
      FROM (SELECT user_id, role FROM project_members WHERE project_id = $1 LIMIT $3) AS m
    UNION ALL
    SELECT 1, 0, NULL, NULL, NULL WHERE EXISTS (
        SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)
    UNION ALL
    SELECT 2, 0, NULL, NULL, payload FROM doc_states WHERE project_id = $1 AND EXISTS (
        SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)
    UNION ALL
    SELECT 3, seq, NULL, NULL, payload FROM doc_updates WHERE project_id = $1 AND EXISTS (
        SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)
) AS stored ORDER BY part, seq
"""


class PgFirstJoinReader:
    def __init__(self, db: Database, *, members_kept_max: int = MEMBERS_KEPT_MAX) -> None:
        self._db = db
        self._members_kept_max = members_kept_max

    async def keep_prepared(self) -> None:
        """Prepare the read on every pool connection (see ``Database.keep_prepared``)."""
        await self._db.keep_prepared(_READ, uuid.UUID(int=0), "", 0)

    async def read_first_join(self, doc_id: str, user_id: str) -> FirstJoin:
        kept_max = self._members_kept_max
        rows = await self._db.fetch(_READ, uuid.UUID(doc_id), user_id, kept_max + 1)
        members: dict[str, bool] = {}
        is_member = False
        updates: list[bytes] = []
        for row in rows:
            part = row["part"]
            if part == 0:
                members[row["user_id"]] = Role(row["role"]).can_edit
            elif part == 1:
                is_member = True
            else:
                updates.append(bytes(row["payload"]))
        return FirstJoin(
            members=members if len(members) <= kept_max else None,
            updates=updates if is_member else None,
        )

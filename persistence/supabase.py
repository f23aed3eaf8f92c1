"""Supabase: the access rules for its API roles, applied whenever the schema may have changed.

Migration 0006 defines ``flowai_supabase_access()``: on a Supabase database (its ``auth.uid()``
here, and the roles ``anon``, ``authenticated``, ``service_role``) it adds the read policies
for ``authenticated`` and takes back the rights Supabase's default privileges give the API
roles on every new table; elsewhere it does nothing. Supabase grants those rights when a table
is created, so the rules are applied again after every migration run and after the job queue
installs its schema, and a database that became a Supabase one after it was migrated gets them
on the next ``flowai migrate`` (or start-up).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg.pool

__all__ = ["apply_supabase_access"]

log = logging.getLogger(__name__)


async def apply_supabase_access(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
) -> str | None:
    """Apply the rules in one transaction; what it did, or None before migration 0006."""
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regprocedure('flowai_supabase_access()')") is None:
            return None
        outcome: str = await conn.fetchval("SELECT flowai_supabase_access()")
    if outcome != "not supabase":
        log.info("Supabase access rules checked (%s)", outcome)
    return outcome

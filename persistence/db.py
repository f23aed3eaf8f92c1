"""The connection pool, transactions, running as a user (RLS), and migrations."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from persistence.supabase import apply_supabase_access

__all__ = ["Connection", "Database", "Migration", "load_migrations"]

# What ``Database`` hands out: a pooled connection.
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every process running migrations.
_MIGRATION_LOCK_KEY = 0x466C6F77  # "Flow"
APP_USER_ROLE = "flowai_app_user"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError("two migrations share a number")
    return migrations


class Database:
    """An asyncpg pool plus the few patterns every query module uses.

    Queries go through ``connection`` (or the shortcuts built on it), not the pool's own
    ``fetch``/``execute``: asyncpg gives a connection back through ``asyncio.shield``, a task
    of its own, so awaiting the release costs two event loop turns after the last statement.
    Under a join storm a turn lasts tens of milliseconds, which made every query on the join
    path about 100 ms slower than its round trip. Here the release runs in the background; the
    pool still hands the connection to no one else until it is back and reset.
    """

    def __init__(self) -> None:
        self.pool: asyncpg.Pool
        self._releases: set[asyncio.Task[None]] = set()
        self._kept_prepared: list[tuple[str, tuple[object, ...]]] = []

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Database:
        db = cls()
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=db._prepare_kept
        )
        assert pool is not None
        db.pool = pool
        return db

    async def keep_prepared(self, query: str, *args: object) -> None:
        """Have ``query`` prepared on every connection, those open now and those opened later.

        A statement a connection has not seen costs a round trip to prepare before the one that
        runs it. For the statement a join storm waits on, that second round trip lands behind
        the storm's work on the event loop; pool connections come and go (idle ones close after
        five minutes), so the first storm after a quiet spell would pay it. ``args`` must make
        the statement match nothing: it is run to fill asyncpg's statement cache.
        """
        self._kept_prepared.append((query, args))
        idle = self.pool.get_idle_size()
        conns = [await self.pool.acquire() for _ in range(idle)]
        try:
            for conn in conns:
                await conn.fetch(query, *args)
        finally:
            for conn in conns:
                await self.pool.release(conn)

    async def _prepare_kept(self, conn: asyncpg.Connection) -> None:
        for query, args in self._kept_prepared:
            await conn.fetch(query, *args)

    async def close(self) -> None:
        await asyncio.gather(*self._releases)
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection, given back in the background once the block ends."""
        conn: Connection = await self.pool.acquire()
        try:
            yield conn
        finally:
            release = asyncio.get_running_loop().create_task(self._release(conn))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)

    async def _release(self, conn: Connection) -> None:
        try:
            await self.pool.release(conn)
        except Exception:  # asyncpg closed that connection; the pool opens another
            log.warning("giving a connection back to the pool failed", exc_info=True)

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        async with self.connection() as conn:
            return await conn.execute(query, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def as_user(self, user_id: str) -> AsyncIterator[Connection]:
        """A read-only transaction under ``user_id``'s identity: row-level security applies."""
        async with self.connection() as conn, conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL ROLE {APP_USER_ROLE}")
            await conn.execute("SELECT set_config('flowai.user_id', $1, true)", user_id)
            yield conn

    async def ping(self) -> None:
        await self.fetchval("SELECT 1")

    async def migrate(self, migrations: list[Migration] | None = None) -> list[int]:
        """Apply pending migrations, each in its own transaction; returns those applied.

        Then the Supabase access rules (``persistence/supabase.py``), on every run. An advisory
        lock serialises concurrent starters, so running it twice, or from several
        processes at once, is a no-op after the first.
        """
        migrations = load_migrations() if migrations is None else migrations
        applied: list[int] = []
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
            try:
                await conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now())"""
                )
                done = {
                    r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")
                }
                for migration in migrations:
                    if migration.version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                    log.info("applied migration %04d_%s", migration.version, migration.name)
                    applied.append(migration.version)
                # Every run: Supabase may have been set up since, or given its API roles
                # rights on tables just created.
                await apply_supabase_access(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
        return applied


def row_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(record) if record is not None else None

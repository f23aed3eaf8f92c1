"""``Database``: queries answer before their connection is back in the pool, and it comes back."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from persistence.db import Database
from tests.support.yclient import eventually


async def _one_connection(database_url: str) -> Database:
    return await Database.connect(database_url, min_size=1, max_size=1)


async def test_a_query_answers_before_its_connection_is_given_back(database_url: str) -> None:
    db = await _one_connection(database_url)
    try:
        assert db.pool.get_idle_size() == 1
        assert await db.fetchval("SELECT 41 + 1") == 42
        # Answered, and the release (a task of its own in asyncpg) has not run yet.
        assert db.pool.get_idle_size() == 0
        await eventually(lambda: db.pool.get_idle_size() == 1)
    finally:
        await db.close()


async def test_the_only_connection_serves_queries_back_to_back(database_url: str) -> None:
    db = await _one_connection(database_url)
    try:
        # Each query waits for the previous release: nothing leaks, nothing deadlocks.
        results = [await db.fetchval("SELECT $1::int", i) for i in range(20)]
        assert results == list(range(20))
        together = await asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(20)))
        assert together == list(range(20))
    finally:
        await db.close()


async def test_a_failed_statement_gives_its_connection_back(database_url: str) -> None:
    db = await _one_connection(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await db.fetch("SELECT * FROM no_such_table")
        async with db.transaction() as conn:
            await conn.execute("CREATE TEMPORARY TABLE t (x int) ON COMMIT DROP")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("CREATE UNIQUE INDEX ON t (x); INSERT INTO t VALUES (1), (1)")
        assert await db.fetchval("SELECT 7") == 7
    finally:
        await db.close()


async def test_a_user_transaction_leaves_nothing_behind_on_the_connection(
    database_url: str,
) -> None:
    db = await _one_connection(database_url)
    try:
        await db.migrate()
        async with db.as_user("alice") as conn:
            assert await conn.fetchval("SELECT current_setting('flowai.user_id')") == "alice"
        # The same (only) connection, reset on its way back.
        row = await db.fetchrow(
            "SELECT current_user AS who, current_setting('flowai.user_id', true) AS uid"
        )
        assert row is not None
        assert row["who"] != "flowai_app_user"
        assert not row["uid"]
    finally:
        await db.close()


async def test_a_kept_statement_is_prepared_on_every_connection(database_url: str) -> None:
    db = await Database.connect(database_url, min_size=2, max_size=3)
    query = "SELECT $1::int + 40"
    count = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1"
    try:
        await db.keep_prepared(query, 0)

        async def prepared_on_each(n: int) -> list[int]:
            conns = [await db.pool.acquire() for _ in range(n)]  # n distinct sessions
            try:
                return [await c.fetchval(count, query) for c in conns]
            finally:
                for c in conns:
                    await db.pool.release(c)

        assert await prepared_on_each(2) == [1, 1]
        await db.pool.expire_connections()  # replaced by new sessions on their next use
        assert await prepared_on_each(3) == [1, 1, 1]  # the third one opened just now
        assert await db.fetchval(query, 2) == 42
    finally:
        await db.close()

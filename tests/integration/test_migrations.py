from __future__ import annotations

from persistence.db import Database, load_migrations
from tests.support import pg


async def test_migrations_apply_once_and_rerun_is_a_noop() -> None:
    name = pg.fresh_name()
    await pg.create_database(name)
    try:
        db = await Database.connect(pg.dsn_for(name))
        try:
            first = await db.migrate()
            assert first == [m.version for m in load_migrations()]
            assert await db.migrate() == []
            tables = {
                r["tablename"]
                for r in await db.pool.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public'"
                )
            }
            assert {"video_projects", "project_members", "doc_updates", "doc_versions"} <= tables
        finally:
            await db.close()
    finally:
        await pg.drop_database(name)

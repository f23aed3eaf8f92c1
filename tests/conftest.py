from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.settings import Settings
from tests.support.server import TEST_SECRET, RunningServer, run_server


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "jwt_secret": TEST_SECRET,
        "data_dir": tmp_path,
        "room_unload_grace_ms": 200,
        "group_commit_ms": 10,
        "awareness_coalesce_ms": 10,
        "log_json": False,
        # In-process test servers merge in a thread: a worker process per server would cost
        # the suite a Python start each (tests/integration/test_merge_process.py covers it).
        "compact_in_process": False,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with run_server(settings) as running:
        yield running


# -- PostgreSQL ---------------------------------------------------------------------------

import asyncio  # noqa: E402

from persistence.db import Database  # noqa: E402
from tests.support import pg  # noqa: E402


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = asyncio.run(pg.create_template())
    yield name
    asyncio.run(pg.drop_database(name))


@pytest.fixture
async def database_url(pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    name = pg.fresh_name()
    await pg.create_database(name, template=pg_template)
    yield pg.dsn_for(name)
    await pg.drop_database(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_url)
    yield database
    await database.close()


@pytest.fixture
async def pg_server(server: RunningServer) -> RunningServer:
    """A running server on a fresh, migrated database (every server fixture is one)."""
    return server

"""Appends of several rooms written together (``persistence.append_batch``), on PostgreSQL.

The database is real; the wrapper below only records the statements the batcher runs and can
hold the first one, so that other rooms' appends arrive while it is being written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest

from persistence.db import Database
from persistence.documents import PgDocumentStore
from tests.support.pg import new_project


class _Statement:
    def __init__(self, conn: Any, log: list[int], gate: asyncio.Event) -> None:
        self._conn = conn
        self._log = log
        self._gate = gate

    async def execute(self, query: str, *args: Any) -> str:
        self._log.append(len(set(args[0])))  # how many projects this statement wrote
        if len(self._log) == 1:
            await self._gate.wait()
        return cast(str, await self._conn.execute(query, *args))


class _RecordingDatabase:
    """A real ``Database``'s connections, with their statements counted."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.statements: list[int] = []
        self.gate = asyncio.Event()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_Statement]:
        async with self._db.connection() as conn:
            yield _Statement(conn, self.statements, self.gate)


async def _until(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_appends_waiting_behind_one_statement_go_out_together(db: Database) -> None:
    recording = _RecordingDatabase(db)
    store = PgDocumentStore(cast(Database, recording))
    projects = [await new_project(db) for _ in range(5)]
    first = asyncio.create_task(store.append(projects[0], [b"a0", b"a1"]))
    await _until(lambda: len(recording.statements) == 1)  # written, and held
    others = [
        asyncio.create_task(store.append(p, [f"{p}:{n}".encode() for n in range(3)]))
        for p in projects[1:]
    ]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in [first, *others])  # nothing is acknowledged early
    recording.gate.set()
    await asyncio.gather(first, *others)

    assert recording.statements == [1, 4]  # the four that waited: one statement
    assert await PgDocumentStore(db).load(projects[0]) == [b"a0", b"a1"]
    for p in projects[1:]:  # each in the order it was sent
        assert await PgDocumentStore(db).load(p) == [f"{p}:{n}".encode() for n in range(3)]


async def test_a_failing_append_fails_alone(db: Database) -> None:
    recording = _RecordingDatabase(db)
    store = PgDocumentStore(cast(Database, recording))
    good, other = await new_project(db), await new_project(db)
    unknown = str(uuid.uuid4())  # no such project: the foreign key refuses its rows
    first = asyncio.create_task(store.append(good, [b"first"]))
    await _until(lambda: len(recording.statements) == 1)
    waiting = [
        asyncio.create_task(store.append(other, [b"o1", b"o2"])),
        asyncio.create_task(store.append(unknown, [b"x"])),
        asyncio.create_task(store.append(good, [b"second"])),
    ]
    await asyncio.sleep(0.05)
    recording.gate.set()
    await first
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncpg.ForeignKeyViolationError)
    # Together first (refused as a whole), then one by one.
    assert recording.statements == [1, 3, 1, 1, 1]
    assert await PgDocumentStore(db).load(other) == [b"o1", b"o2"]
    assert await PgDocumentStore(db).load(good) == [b"first", b"second"]
    assert await PgDocumentStore(db).load(unknown) == []


async def test_an_unreachable_database_fails_every_waiting_append(database_url: str) -> None:
    db = await Database.connect(database_url, min_size=0, max_size=1)
    store = PgDocumentStore(db)
    project = await new_project(db)
    await db.close()  # every acquire now fails
    with pytest.raises(asyncpg.InterfaceError):
        await asyncio.gather(store.append(project, [b"a"]), store.append(project, [b"b"]))


async def test_cancelling_the_writer_leaves_no_append_waiting(db: Database) -> None:
    recording = _RecordingDatabase(db)
    store = PgDocumentStore(cast(Database, recording))
    project = await new_project(db)
    first = asyncio.create_task(store.append(project, [b"held"]))
    await _until(lambda: len(recording.statements) == 1)  # being written, and held
    second = asyncio.create_task(store.append(project, [b"waiting"]))
    await asyncio.sleep(0.01)
    writers = [t for t in asyncio.all_tasks() if t.get_name() == "doc-appends"]
    assert len(writers) == 1
    writers[0].cancel()  # as at shutdown
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)

"""One contract for every ``crdt.ports.DocumentStore``: the in-memory twin and PostgreSQL pass
the same tests, so unit tests that run rooms on the twin say something about production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Doc

from crdt.ports import DocumentStore
from crdt.timeline import add_clip, add_track, init_project, move_clip, read_timeline
from persistence.db import Database
from persistence.documents import PgDocumentStore
from persistence.memory import MemoryDocumentStore
from tests.support import pg


@dataclass
class Store:
    store: DocumentStore
    # A document id the store accepts (PostgreSQL keys documents by an existing project).
    new_doc: Callable[[], Awaitable[str]]


@pytest.fixture(params=["memory", "postgres"])
async def subject(request: pytest.FixtureRequest, pg_template: str) -> AsyncIterator[Store]:
    if request.param == "memory":

        async def memory_doc() -> str:
            return str(uuid.uuid4())

        yield Store(MemoryDocumentStore(), memory_doc)
        return
    name = pg.fresh_name()
    await pg.create_database(name, template=pg_template)
    db = await Database.connect(pg.dsn_for(name))

    async def pg_doc() -> str:
        project_id = uuid.uuid4()
        await db.pool.execute(
            "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, 'u', 't')", project_id
        )
        return str(project_id)

    try:
        yield Store(PgDocumentStore(db), pg_doc)
    finally:
        await db.close()
        await pg.drop_database(name)


def _edits(count: int) -> tuple[list[bytes], Doc[Any]]:
    """``count`` updates of one timeline, and the document they make."""
    doc: Doc[Any] = Doc(client_id=7)
    updates: list[bytes] = []

    def edit(change: Callable[[Doc[Any]], object]) -> None:
        before = doc.get_state()
        change(doc)
        updates.append(doc.get_update(before))

    edit(lambda d: init_project(d, title="contract"))
    edit(lambda d: add_track(d, "video", "V1", track_id="t"))
    for i in range(count - 2):
        if i % 3 == 2:
            edit(lambda d, i=i: move_clip(d, f"c{i - 1}", start_ms=i * 10))
        else:
            edit(
                lambda d, i=i: add_clip(
                    d, "t", "title", start_ms=i, duration_ms=1000, text="x", clip_id=f"c{i}"
                )
            )
    return updates, doc


def _doc_of(updates: list[bytes] | Any) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return doc


async def test_an_unknown_document_loads_empty(subject: Store) -> None:
    assert list(await subject.store.load(await subject.new_doc())) == []


async def test_what_is_appended_loads_back_as_the_same_document(subject: Store) -> None:
    doc_id = await subject.new_doc()
    updates, doc = _edits(12)
    await subject.store.append(doc_id, updates[:5])
    await subject.store.append(doc_id, updates[5:])
    loaded = _doc_of(await subject.store.load(doc_id))
    assert read_timeline(loaded).to_json() == read_timeline(doc).to_json()
    assert loaded.get_state() == doc.get_state()


async def test_documents_are_kept_apart(subject: Store) -> None:
    first, second = await subject.new_doc(), await subject.new_doc()
    updates, _ = _edits(4)
    await subject.store.append(first, updates)
    assert list(await subject.store.load(second)) == []


async def test_compaction_keeps_the_content_and_shrinks_the_log(subject: Store) -> None:
    doc_id = await subject.new_doc()
    updates, doc = _edits(30)
    for update in updates:
        await subject.store.append(doc_id, [update])
    await subject.store.compact(doc_id)
    stored = list(await subject.store.load(doc_id))
    assert len(stored) < len(updates)
    assert read_timeline(_doc_of(stored)).to_json() == read_timeline(doc).to_json()


async def test_appends_after_compaction_and_an_unload_are_all_kept(subject: Store) -> None:
    doc_id = await subject.new_doc()
    updates, doc = _edits(20)
    await subject.store.append(doc_id, updates[:10])
    await subject.store.compact(doc_id)
    await subject.store.append(doc_id, updates[10:])
    await subject.store.unloaded(doc_id, doc.get_update())
    loaded = _doc_of(await subject.store.load(doc_id))
    assert read_timeline(loaded).to_json() == read_timeline(doc).to_json()


async def test_concurrent_appends_and_compaction_lose_nothing(subject: Store) -> None:
    doc_id = await subject.new_doc()
    updates, doc = _edits(40)
    await subject.store.append(doc_id, updates[:2])

    async def writer(part: list[bytes]) -> None:
        for update in part:
            await subject.store.append(doc_id, [update])

    # Appends race a compaction: whatever order they commit in, every update stays.
    await asyncio.gather(
        writer(updates[2:21]), writer(updates[21:]), subject.store.compact(doc_id)
    )
    loaded = _doc_of(await subject.store.load(doc_id))
    assert read_timeline(loaded).to_json() == read_timeline(doc).to_json()


async def test_an_update_stored_twice_is_harmless(subject: Store) -> None:
    doc_id = await subject.new_doc()
    updates, doc = _edits(6)
    await subject.store.append(doc_id, updates)
    await subject.store.append(doc_id, updates[2:4])  # e.g. stored again by another instance
    await subject.store.compact(doc_id)
    loaded = _doc_of(await subject.store.load(doc_id))
    assert read_timeline(loaded).to_json() == read_timeline(doc).to_json()

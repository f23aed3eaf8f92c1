"""The PostgreSQL document store: the update log, loading, compaction and its safety checks.

Every test runs against a fresh, migrated database. Races with a concurrent writer or a
concurrent compaction are reproduced deterministically by handing the store a connection
whose queries run a hook at the exact point of interest; the database itself is never faked.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import pytest
from pycrdt import Doc, merge_updates

import persistence.documents
from crdt.live.registry import Rooms, RoomSettings
from crdt.ports import Disconnect
from crdt.protocol import SyncStep2, SyncUpdate, decode_message, encode_update
from crdt.timeline import (
    add_clip,
    add_track,
    delete_clip,
    init_project,
    move_clip,
    read_timeline,
    set_clip_volume,
    trim_clip,
)
from persistence.db import Connection, Database
from persistence.documents import (
    CompactionMismatch,
    PgDocumentStore,
    merge_in_thread,
    verify_merge,
)
from tests.support.pg import new_project
from tests.support.yclient import decode_state_vector

# -- helpers ----------------------------------------------------------------------------------


def _doc_of(updates: Sequence[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return doc


def _content(doc: Doc[Any]) -> tuple[dict[str, Any], dict[int, int]]:
    """What must survive storage: the timeline as JSON and the state vector."""
    return read_timeline(doc).to_json(), decode_state_vector(doc.get_state())


def _edit(doc: Doc[Any], change: Callable[[Doc[Any]], object]) -> bytes:
    before = doc.get_state()
    change(doc)
    return doc.get_update(before)


def _history(edits: int, *, clients: int = 3, seed: int = 7) -> list[bytes]:
    """A timeline's history as its updates, in the order a server would receive them.

    Client 0 sets up a project with one track and four clips; then the clients take turns
    moving, trimming, re-leveling, adding and deleting clips, each edit reaching the others at
    once (so every update is a small change on top of the same document)."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(client_id=1000 + i) for i in range(clients)]

    def setup(doc: Doc[Any]) -> None:
        with doc.transaction():
            init_project(doc, "History")
            add_track(doc, "video", "V1", track_id="t1")
            for n in range(4):
                add_clip(doc, "t1", "video", start_ms=n * 1000, duration_ms=900, clip_id=f"c{n}")

    updates = [_edit(docs[0], setup)]
    for doc in docs[1:]:
        doc.apply_update(updates[0])
    next_clip = 4
    for n in range(edits):
        author = docs[n % clients]
        clips = sorted(c.id for c in read_timeline(author).clips)
        clip = rng.choice(clips)
        roll = rng.random()
        change: Callable[[Doc[Any]], object]
        if roll < 0.05:
            change = partial(
                add_clip,
                track_id="t1",
                kind="video",
                start_ms=rng.randrange(60_000),
                duration_ms=500,
                clip_id=f"c{next_clip}",
            )
            next_clip += 1
        elif roll < 0.08 and len(clips) > 2:
            change = partial(delete_clip, clip_id=clip)
        elif roll < 0.6:
            change = partial(move_clip, clip_id=clip, start_ms=rng.randrange(60_000))
        elif roll < 0.85:
            change = partial(trim_clip, clip_id=clip, duration_ms=rng.randrange(1, 5_000))
        else:
            change = partial(set_clip_volume, clip_id=clip, volume=rng.random())
        update = _edit(author, change)
        updates.append(update)
        for doc in docs:
            if doc is not author:
                doc.apply_update(update)
    return updates


async def _log(db: Database, project_id: str) -> list[tuple[int, bytes]]:
    rows = await db.pool.fetch(
        "SELECT seq, payload FROM doc_updates WHERE project_id = $1 ORDER BY seq",
        uuid.UUID(project_id),
    )
    return [(r["seq"], bytes(r["payload"])) for r in rows]


async def _state_row(db: Database, project_id: str) -> dict[str, Any] | None:
    row = await db.pool.fetchrow(
        "SELECT payload, state_vector, merged_count, updated_at FROM doc_states "
        "WHERE project_id = $1",
        uuid.UUID(project_id),
    )
    return dict(row) if row is not None else None


class _HookedConnection:
    """A real connection that awaits ``before`` ahead of the first query starting with
    ``prefix``; everything else is passed straight through."""

    def __init__(self, conn: Connection, prefix: str, before: Callable[[], Awaitable[None]]):
        self._conn = conn
        self._prefix = prefix
        self._before: Callable[[], Awaitable[None]] | None = before

    async def _maybe_hook(self, query: str) -> None:
        if self._before is not None and query.lstrip().upper().startswith(self._prefix):
            before, self._before = self._before, None
            await before()

    async def execute(self, query: str, *args: Any) -> str:
        await self._maybe_hook(query)
        return await self._conn.execute(query, *args)

    async def fetch(self, query: str, *args: Any) -> Any:
        await self._maybe_hook(query)
        return await self._conn.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self._maybe_hook(query)
        return await self._conn.fetchval(query, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _HookedDatabase:
    """Hands out ``_HookedConnection``s from a real pool (what ``PgDocumentStore`` uses)."""

    def __init__(self, db: Database, prefix: str, before: Callable[[], Awaitable[None]]):
        self._db = db
        self._prefix = prefix
        self._before = before
        self.pool = self

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_HookedConnection]:
        async with self._db.pool.acquire() as conn:
            yield _HookedConnection(conn, self._prefix, self._before)


# -- append and load --------------------------------------------------------------------------


async def test_append_then_load_returns_every_update_in_order(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(60)
    assert await store.load(project_id) == []
    await store.append(project_id, [])  # Nothing to store is not an error.
    for start in range(0, len(updates), 16):
        await store.append(project_id, updates[start : start + 16])

    loaded = await store.load(project_id)
    assert loaded == updates
    assert _content(_doc_of(loaded)) == _content(_doc_of(updates))
    # Another document's log is separate.
    assert await store.load(await new_project(db)) == []


# -- compaction -------------------------------------------------------------------------------


async def test_compaction_merges_the_log_into_one_equal_state(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(200)
    await store.append(project_id, updates)
    before = _content(_doc_of(await store.load(project_id)))

    result = await store.compact(project_id)

    assert result.merged_rows == len(updates)
    assert await _log(db, project_id) == []
    loaded = await store.load(project_id)
    assert len(loaded) == 1
    assert result.state_bytes == len(loaded[0])
    assert _content(_doc_of(loaded)) == before
    state = await _state_row(db, project_id)
    assert state is not None
    assert state["merged_count"] == len(updates)
    assert decode_state_vector(bytes(state["state_vector"])) == before[1]
    # The merged state is far smaller than the history it replaces.
    assert len(loaded[0]) < sum(len(u) for u in updates)


async def test_compaction_then_more_edits_loads_state_plus_newer_updates(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(120)
    await store.append(project_id, updates[:70])
    await store.compact(project_id)
    await store.append(project_id, updates[70:])

    loaded = await store.load(project_id)
    assert len(loaded) == 1 + len(updates) - 70
    assert loaded[1:] == updates[70:]
    assert _content(_doc_of(loaded)) == _content(_doc_of(updates))

    result = await store.compact(project_id)
    assert result.merged_rows == len(updates) - 70
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))
    state = await _state_row(db, project_id)
    assert state is not None and state["merged_count"] == len(updates)


async def test_compaction_keeps_a_row_that_commits_while_it_runs(db: Database) -> None:
    """A writer takes its ``seq`` before compaction reads the log but commits only between
    compaction's read and its delete: the row is not merged, so it must not be deleted, even
    though its ``seq`` is lower than rows that were merged."""
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    pid = uuid.UUID(project_id)
    updates = _history(40)
    early, late, rest = updates[:20], updates[-1], updates[20:-1]
    await store.append(project_id, early)

    async with db.pool.acquire() as writer:
        pending = writer.transaction()
        await pending.start()
        await writer.execute(
            "INSERT INTO doc_updates (project_id, payload) VALUES ($1, $2)", pid, late
        )
        await store.append(project_id, rest)  # Committed, with higher seqs than ``late``.
        merged_seqs = [seq for seq, _ in await _log(db, project_id)]

        async def commit_late_row() -> None:
            await pending.commit()

        async with db.transaction() as conn:
            hooked = _HookedConnection(conn, "DELETE", commit_late_row)
            result = await store._compact_locked(cast(Connection, hooked), pid)

    assert result.merged_rows == len(early) + len(rest)
    log = await _log(db, project_id)
    assert [payload for _, payload in log] == [late]
    assert log[0][0] < max(merged_seqs)  # Deleting "up to the highest seq" would have lost it.
    # The late row is applied on load, on top of the merged state.
    loaded = await store.load(project_id)
    assert len(loaded) == 2 and loaded[1] == late
    assert _content(_doc_of(loaded)) == _content(_doc_of(updates))
    # The next compaction picks it up.
    assert (await store.compact(project_id)).merged_rows == 1
    assert await _log(db, project_id) == []
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))


async def test_loads_racing_compactions_and_appends_never_miss_an_update(db: Database) -> None:
    """State and log are read in one snapshot: a compaction committing while a load runs
    must not make it see the old state with an emptied log (losing what was merged)."""
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(120)
    await store.append(project_id, updates[:40])
    appended = 40

    async def churn() -> None:
        nonlocal appended
        for start in range(40, len(updates), 4):
            await store.append(project_id, updates[start : start + 4])
            appended = start + 4
            await store.compact(project_id)

    async def load_and_check() -> int:
        checks = 0
        while appended < len(updates):
            before = appended  # everything up to here was committed before the load began
            loaded = await store.load(project_id)
            assert _includes(_doc_of(loaded), _doc_of(updates[:before]))
            checks += 1
        return checks

    results = await asyncio.wait_for(
        asyncio.gather(churn(), *(load_and_check() for _ in range(4))), 60
    )
    assert sum(results[1:]) >= 4  # the loads really ran while the log was being compacted
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))


def _includes(doc: Doc[Any], earlier: Doc[Any]) -> bool:
    """Whether ``doc`` holds everything ``earlier`` does (per client clocks)."""
    have = decode_state_vector(doc.get_state())
    need = decode_state_vector(earlier.get_state())
    return all(have.get(client, 0) >= clock for client, clock in need.items())


async def test_concurrent_compactions_merge_each_row_once(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(150)
    await store.append(project_id, updates)

    results = await asyncio.gather(*(store.compact(project_id) for _ in range(3)))

    assert sorted(r.merged_rows for r in results) == [0, 0, len(updates)]
    state = await _state_row(db, project_id)
    assert state is not None and state["merged_count"] == len(updates)
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))


def test_verify_merge_accepts_a_faithful_merge_and_rejects_a_lossy_one() -> None:
    updates = _history(30)
    verify_merge(updates, merge_updates(*updates))

    with pytest.raises(CompactionMismatch):  # The last edit's new items are missing.
        verify_merge(updates, merge_updates(*updates[:-1]))

    # A deletion adds no items, so the state vector alone cannot tell it is missing.
    doc = _doc_of(updates)
    clip = read_timeline(doc).clips[0].id
    deletion = _edit(doc, lambda d: delete_clip(d, clip))
    with pytest.raises(CompactionMismatch, match="timeline"):
        verify_merge([*updates, deletion], merge_updates(*updates))


async def test_compaction_of_a_document_edited_by_many_clients(db: Database) -> None:
    """Clients pick random ids, as Yjs clients do. Two docs of the same content may then encode
    their state vectors with the clients in different orders, which is no mismatch."""
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    rng = random.Random(11)
    streams: list[list[bytes]] = []
    for i in range(20):
        doc: Doc[Any] = Doc(client_id=rng.randrange(1, 2**32))
        track, clip = f"t{i}", f"c{i}"
        add = partial(add_clip, track_id=track, kind="video", start_ms=0, duration_ms=9)
        streams.append(
            [
                _edit(doc, partial(add_track, kind="video", name=track, track_id=track)),
                _edit(doc, partial(add, clip_id=clip)),
                _edit(doc, partial(move_clip, clip_id=clip, start_ms=5)),
            ]
        )
    updates: list[bytes] = []
    for _ in range(sum(len(s) for s in streams)):  # Interleaved, each client's in its order.
        stream = rng.choice([s for s in streams if s])
        updates.append(stream.pop(0))
    await store.append(project_id, updates)

    assert (await store.compact(project_id)).merged_rows == len(updates)
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))
    verify_merge(updates, merge_updates(*updates))


async def test_a_merge_that_fails_verification_deletes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(80)
    await store.append(project_id, updates[:40])
    await store.compact(project_id)
    await store.append(project_id, updates[40:])
    state_before = await _state_row(db, project_id)
    log_before = await _log(db, project_id)

    def lossy_merge(parts: list[bytes]) -> bytes:
        return merge_updates(*parts[:-1])  # Drops the newest update.

    monkeypatch.setattr(persistence.documents, "merge_states", lossy_merge)
    with pytest.raises(CompactionMismatch):
        await store.compact(project_id)

    assert await _log(db, project_id) == log_before
    assert await _state_row(db, project_id) == state_before
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))

    monkeypatch.undo()
    assert (await store.compact(project_id)).merged_rows == len(updates) - 40


async def test_compacting_an_empty_log_changes_nothing(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)

    result = await store.compact(project_id)
    assert (result.merged_rows, result.state_bytes) == (0, 0)
    assert await _state_row(db, project_id) is None
    assert await store.load(project_id) == []

    updates = _history(20)
    await store.append(project_id, updates)
    first = await store.compact(project_id)
    state = await _state_row(db, project_id)

    again = await store.compact(project_id)  # The log is empty again.
    assert (again.merged_rows, again.state_bytes) == (0, first.state_bytes)
    assert await _state_row(db, project_id) == state  # Not even updated_at moves.


async def test_repeated_compactions_are_idempotent(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    updates = _history(100)
    await store.append(project_id, updates)
    await store.compact(project_id)
    once = await store.load(project_id)

    for _ in range(3):
        assert (await store.compact(project_id)).merged_rows == 0
    assert await store.load(project_id) == once
    state = await _state_row(db, project_id)
    assert state is not None and state["merged_count"] == len(updates)

    # Storing updates the state already holds (a client re-sending after a reconnect) and
    # compacting again leaves the same content.
    await store.append(project_id, updates[-10:])
    assert (await store.compact(project_id)).merged_rows == 10
    assert _content(_doc_of(await store.load(project_id))) == _content(_doc_of(updates))


# -- a live room ------------------------------------------------------------------------------


@dataclass(eq=False)
class _Editor:
    """A collaborator as the room sees it: applies what the room sends it to its own doc."""

    doc: Doc[Any]
    user_id: str = "u"
    closed: list[Disconnect] = field(default_factory=list)

    def send(self, frame: bytes) -> bool:
        message = decode_message(frame)
        if isinstance(message, SyncStep2 | SyncUpdate):
            self.doc.apply_update(message.update)
        return True

    def close(self, reason: Disconnect) -> None:
        self.closed.append(reason)


async def test_room_compacts_while_collaborators_edit(db: Database) -> None:
    store = PgDocumentStore(db)
    project_id = await new_project(db)
    settings = RoomSettings(group_commit_ms=2, compact_updates_max=50, unload_grace_ms=60_000)
    rooms = Rooms(store, settings)
    editors = [_Editor(Doc(client_id=2000 + i)) for i in range(3)]
    live = None
    for editor in editors:
        live = await rooms.join(project_id, editor, can_edit=True)
    assert live is not None

    def send(editor: _Editor, change: Callable[[Doc[Any]], object]) -> None:
        assert live is not None
        live.receive(editor, encode_update(_edit(editor.doc, change)))

    def setup(doc: Doc[Any]) -> None:
        with doc.transaction():
            init_project(doc, "Live")
            add_track(doc, "video", "V1", track_id="t1")
            for n in range(6):
                add_clip(doc, "t1", "video", start_ms=n * 1000, duration_ms=900, clip_id=f"c{n}")

    send(editors[0], setup)
    sent = 1
    rng = random.Random(3)
    rounds, most_rows = 300, 0
    for n in range(rounds):
        for i, editor in enumerate(editors):
            move = partial(move_clip, clip_id=f"c{rng.randrange(6)}", start_ms=n * 10 + i)
            send(editor, move)
            sent += 1
        await asyncio.wait_for(live.flush(), 10)
        if n % 5 == 0:
            most_rows = max(most_rows, len(await _log(db, project_id)))

    await asyncio.wait_for(live.flush(), 10)
    expected = _content(editors[0].doc)
    assert all(_content(e.doc) == expected for e in editors)
    assert _content(live.room.doc) == expected
    # The log never held much more than one compaction threshold's worth of rows.
    assert 0 < most_rows <= 2 * settings.compact_updates_max
    assert _content(_doc_of(await store.load(project_id))) == expected
    state = await _state_row(db, project_id)
    assert state is not None
    rows = len(await _log(db, project_id))
    assert rows <= 2 * settings.compact_updates_max
    assert state["merged_count"] + rows == sent  # Every accepted update stored exactly once.

    for editor in editors:
        live.leave(editor)
    await asyncio.wait_for(rooms.close(), 10)  # Unloading compacts what is left.
    assert await _log(db, project_id) == []
    state = await _state_row(db, project_id)
    assert state is not None and state["merged_count"] == sent
    assert _content(_doc_of(await store.load(project_id))) == expected
    assert not any(e.closed for e in editors)


async def test_compactions_of_one_process_run_one_at_a_time(db: Database) -> None:
    merging: list[int] = []
    release = asyncio.Event()

    async def held_merge(parts: Sequence[bytes]) -> tuple[bytes, bytes]:
        merging.append(len(parts))
        await release.wait()
        return await merge_in_thread(parts)

    store = PgDocumentStore(db, merge=held_merge)
    projects = [await new_project(db) for _ in range(3)]
    for n, project_id in enumerate(projects):
        await store.append(project_id, _history(10 + n))
    compactions = [asyncio.create_task(store.compact(p)) for p in projects]
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert len(merging) == 1  # the others wait, holding no connection
    assert db.pool.get_size() - db.pool.get_idle_size() <= 2
    release.set()
    results = await asyncio.gather(*compactions)
    assert sorted(merging) == sorted(11 + n for n in range(3))
    assert [r.merged_rows for r in results] == [11 + n for n in range(3)]

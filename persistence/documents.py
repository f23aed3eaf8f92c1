"""The document store on PostgreSQL: an append-only update log plus a compacted state.

Loading a document reads its compacted state (if any) and every update still in the log.
Yjs updates are idempotent and commutative, which the design leans on twice:
- an update that is both in the state and still in the log (a compaction that raced a late
  commit) is applied twice, harmlessly;
- compaction deletes exactly the log rows it merged (by ``seq``), never a range, so a row
  that committed while it ran is kept for the next round.
Compaction runs in one transaction and verifies the merged state before anything is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from pycrdt import Decoder, Doc

from crdt.timeline import read_timeline
from persistence.append_batch import AppendBatcher
from persistence.db import Connection, Database

log = logging.getLogger(__name__)

STATE_FORMAT = "state:v1"


class CompactionMismatch(RuntimeError):
    """The merged state does not reproduce what it replaces; nothing was deleted."""


@dataclass(frozen=True, slots=True)
class CompactionResult:
    merged_rows: int
    state_bytes: int


def _doc_of(updates: Sequence[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        for update in updates:
            doc.apply_update(update)
    return doc


def _clocks(doc: Doc[Any]) -> dict[int, int]:
    """The doc's state vector as client id -> clock.

    Its encoding lists the clients in no canonical order: two docs with the same content can
    encode it differently, so encodings are not compared byte for byte."""
    decoder = Decoder(doc.get_state())
    clients = decoder.read_var_uint()
    return {decoder.read_var_uint(): decoder.read_var_uint() for _ in range(clients)}


def merge_states(parts: Sequence[bytes]) -> bytes:
    """One update holding everything in ``parts``.

    Integrating into a Doc and encoding it is linear in the log and drops the content of
    deleted items, where ``pycrdt.merge_updates`` grows faster than linearly (about two minutes
    for 100,000 updates against 0.4 s) and keeps deleted content. An update whose
    dependencies are missing stays pending in the Doc and is encoded with it.
    """
    return _doc_of(parts).get_update()


def merge_verified(parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Merge, then check the result; returns the merged state and its state vector."""
    merged = merge_states(parts)
    verify_merge(parts, merged)
    return merged, _doc_of([merged]).get_state()


def verify_merge(parts: Sequence[bytes], merged: bytes) -> None:
    """Raise ``CompactionMismatch`` unless ``merged`` holds exactly what ``parts`` hold."""
    before, after = _doc_of(parts), _doc_of([merged])
    if _clocks(before) != _clocks(after):
        raise CompactionMismatch("state vectors differ")
    if read_timeline(before).to_json() != read_timeline(after).to_json():
        raise CompactionMismatch("timeline content differs")


Merge = Callable[[Sequence[bytes]], Awaitable[tuple[bytes, bytes]]]


async def merge_in_thread(parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    # CPU-bound (tens of ms for a busy document): off the event loop, so other rooms keep
    # syncing. The Docs are created and used in the worker thread only. pycrdt holds the GIL
    # meanwhile; a server under load merges in a process instead (``persistence.merge_process``).
    return await anyio.to_thread.run_sync(merge_verified, parts)


class PgDocumentStore:
    """Implements ``crdt.ports.DocumentStore``; ``merge`` runs compaction's CPU-bound part."""

    def __init__(self, db: Database, *, merge: Merge = merge_in_thread) -> None:
        self._db = db
        self._appends = AppendBatcher(db)
        self._merge = merge
        self._one_at_a_time = asyncio.Lock()

    async def load(self, doc_id: str) -> list[bytes]:
        # One statement, so one snapshot for the state and the log (a compaction committing
        # between two reads would leave the old state and an emptied log, i.e. lose what it
        # merged), and one round trip: in a join storm on a cold room every joiner waits for
        # this, and each round trip waits behind the storm's other work on the event loop.
        rows = await self._db.fetch(
            "SELECT payload FROM ("
            " SELECT payload, 0 AS part, 0::bigint AS seq FROM doc_states WHERE project_id = $1"
            " UNION ALL"
            " SELECT payload, 1, seq FROM doc_updates WHERE project_id = $1"
            ") AS stored ORDER BY part, seq",
            uuid.UUID(doc_id),
        )
        return [bytes(r["payload"]) for r in rows]

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        if not updates:
            return
        # Written together with the other rooms' appends of this turn (one round trip).
        await self._appends.append(uuid.UUID(doc_id), updates)

    async def unloaded(self, doc_id: str, state: bytes) -> None:
        # The room's own state is not used: other instances may have appended updates this
        # process never saw, so the log in the database is what gets compacted.
        await self.compact(doc_id)

    async def compact(self, doc_id: str) -> CompactionResult:
        project_id = uuid.UUID(doc_id)
        # One compaction of this process at a time. Rooms edited at the same pace reach the
        # threshold together; ten compactions at once (each reading its log, waiting for the
        # merge, rewriting) held up every room's appends for 150-250 ms, the slowest "saved"
        # acknowledgements at 5,000 updates/s. Merges run one at a time anyway.
        async with self._one_at_a_time, self._db.transaction() as conn:
            # Serialise compactions of one document (several instances may hold it).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", doc_id)
            return await self._compact_locked(conn, project_id)

    async def _compact_locked(self, conn: Connection, project_id: uuid.UUID) -> CompactionResult:
        state = await conn.fetchval(
            "SELECT payload FROM doc_states WHERE project_id = $1", project_id
        )
        rows = await conn.fetch(
            "SELECT seq, payload FROM doc_updates WHERE project_id = $1 ORDER BY seq", project_id
        )
        if not rows:
            return CompactionResult(0, len(state) if state is not None else 0)
        parts = ([bytes(state)] if state is not None else []) + [bytes(r["payload"]) for r in rows]
        merged, state_vector = await self._merge(parts)
        await conn.execute(
            """INSERT INTO doc_states (project_id, format, payload, state_vector, merged_count)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (project_id) DO UPDATE SET
                 payload = EXCLUDED.payload, state_vector = EXCLUDED.state_vector,
                 merged_count = doc_states.merged_count + EXCLUDED.merged_count,
                 updated_at = now()""",
            project_id,
            STATE_FORMAT,
            merged,
            state_vector,
            len(rows),
        )
        await conn.execute(
            "DELETE FROM doc_updates WHERE project_id = $1 AND seq = ANY($2::bigint[])",
            project_id,
            [r["seq"] for r in rows],
        )
        return CompactionResult(len(rows), len(merged))

"""Group commit: a room's accepted updates, appended to the ``DocumentStore`` in batches.

Updates gather for ``group_commit_ms`` from the arrival of the oldest one (not from when the
writer is next free, which let an update that arrived during a slow append wait for that
append, a whole window, and the next append) and go out as one append; every append is awaited
and retried with backoff until it succeeds, the batch staying in memory meanwhile, so an
accepted update is never dropped (never fire-and-forget). One writer task per room keeps the
appends in order. After each commit the owner hears what became durable (``Committed``).

Once enough was appended since the last compaction the log is compacted, in a task beside the
writer (at most one per room): a compaction reads, merges and verifies the whole document,
which under load took long enough that commits waiting behind it were the slowest "saved"
acknowledgements. Running it beside the appends is safe because the store deletes exactly the
rows it merged, so an append that commits meanwhile stays in the log for the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from crdt.live.settings import RoomSettings
from crdt.ports import Clock, DocumentStore, RoomMetrics

__all__ = ["Committed", "GroupCommit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    """One group commit, stored."""

    updates: int
    # The highest fan-out number among them (None: none was published by this instance).
    seq_max: int | None
    # The state vector the commit made durable, if the owner asked for it before storing.
    durable: bytes | None


class GroupCommit:
    def __init__(
        self,
        doc_id: str,
        store: DocumentStore,
        settings: RoomSettings,
        *,
        clock: Clock,
        metrics: RoomMetrics,
        durable_state: Callable[[], bytes | None],
        committed: Callable[[Committed], None],
        compacted: Callable[[], object],
    ) -> None:
        self._doc_id = doc_id
        self._store = store
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        # Called just before a batch is stored: everything in the document then is in this
        # batch or was stored before it, so its state vector is durable once the batch is.
        self._durable_state = durable_state
        self._committed = committed
        self._compacted = compacted
        # Accepted updates awaiting the next commit, with their fan-out numbers (None for
        # updates first accepted by another instance and stored here on its behalf).
        self._pending: list[tuple[int | None, bytes]] = []
        self._pending_since: float | None = None  # when the oldest pending update arrived
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is waiting to be stored
        self._idle.set()
        self._appended_count = 0
        self._appended_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"store:{self._doc_id}")

    @property
    def started(self) -> bool:
        return self._writer is not None

    def add(self, seq: int | None, update: bytes) -> None:
        if not self._pending:
            self._pending_since = self._clock()
        self._pending.append((seq, update))
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every accepted update is committed."""
        await self._idle.wait()

    async def stop(self, *, flush_timeout_s: float | None) -> bool:
        """Commit everything, then stop the writer; False if the store was still unreachable
        after ``flush_timeout_s`` (the writer is stopped all the same)."""
        if self._writer is None:
            return True
        try:
            await asyncio.wait_for(self.flush(), flush_timeout_s)
        except TimeoutError:
            self._writer.cancel()
            if self._compaction is not None:
                self._compaction.cancel()
            return False
        self._writer.cancel()
        with suppress(asyncio.CancelledError):
            await self._writer
        if self._compaction is not None:
            await asyncio.gather(self._compaction, return_exceptions=True)
        return True

    async def _write_loop(self) -> None:
        window_s = self._settings.group_commit_ms / 1000
        while True:
            await self._wake.wait()
            # Gather what arrives within the window of the oldest pending update into one
            # commit (group commit).
            since = self._pending_since
            delay_s = window_s if since is None else since + window_s - self._clock()
            if delay_s > 0:
                await asyncio.sleep(min(delay_s, window_s))
            self._wake.clear()
            batch, self._pending = self._pending, []
            since, self._pending_since = self._pending_since, None
            durable = self._durable_state()
            await self._store_with_retry([update for _, update in batch])
            if not self._pending:
                self._idle.set()
            waited_s = self._clock() - since if since is not None else 0.0
            self._metrics.committed(len(batch), waited_s)
            seqs = [seq for seq, _ in batch if seq is not None]
            self._committed(Committed(len(batch), max(seqs) if seqs else None, durable))
            self._appended_count += len(batch)
            self._appended_bytes += sum(len(u) for _, u in batch)
            if (
                self._appended_count >= self._settings.compact_updates_max
                or self._appended_bytes >= self._settings.compact_bytes_max
            ) and (self._compaction is None or self._compaction.done()):
                self._appended_count = self._appended_bytes = 0
                self._compaction = asyncio.create_task(
                    self._compact(), name=f"compact:{self._doc_id}"
                )

    async def _store_with_retry(self, batch: list[bytes]) -> None:
        delay = 0.05
        while True:
            try:
                await self._store.append(self._doc_id, batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # Keep the batch and try again: an accepted update is never dropped.
                log.exception(
                    "storing updates failed; retrying", extra={"project_id": self._doc_id}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.store_retry_ms_max / 1000)

    async def _compact(self) -> None:
        try:
            await self._store.compact(self._doc_id)
            self._metrics.compacted(True)
            self._compacted()
        except Exception:
            # The log stays as it was; compaction is retried at the next threshold.
            log.exception("compaction failed", extra={"project_id": self._doc_id})
            self._metrics.compacted(False)

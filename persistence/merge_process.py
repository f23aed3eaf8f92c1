"""Compaction's merge in a separate process.

Merging a document's log (integrate every update into a Doc, encode it, decode it again to
verify) is pycrdt work that holds the GIL for its whole length. In a worker thread it still
stopped the event loop: every time the loop made a system call (each socket write), the merging
thread took the GIL and kept it for up to the interpreter's switch interval, so a server
compacting under load stalled its own sends and its database round trips (measured at 5,000
updates/s: asyncpg's calls showed as 18 % of the server's samples with compaction running,
2 % without). A process of its own runs the merge on another core and leaves the GIL alone.

One worker, started with ``spawn`` (forking a process that runs an event loop and threads is
not safe), ignores SIGINT and SIGTERM: the server decides when it stops, after the rooms that
unload at shutdown have compacted. A worker that died is replaced at the next compaction.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from persistence.documents import merge_verified

__all__ = ["MergeProcess"]


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _ready() -> bool:
    return True


class MergeProcess:
    """``merge(parts)``: ``persistence.documents.merge_verified`` in the worker process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_stop_signals,
            )
        return self._pool

    def start(self) -> None:
        """Start the worker now (it imports in the background), so that the first compaction
        does not wait for it."""
        self._executor().submit(_ready)

    async def merge(self, parts: Sequence[bytes]) -> tuple[bytes, bytes]:
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, merge_verified, list(parts)
            )
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this compaction fails and is retried
            # later; the next one starts a new worker.
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

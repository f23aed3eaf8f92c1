"""Keeps one live room in step with the same room on other instances, through a ``Fanout``.

Each instance numbers the updates it accepts (``seq``) and, after storing them, announces how
far it has stored. Updates from another instance are applied at once and remembered until
their origin announces they are stored; an update still unannounced after
``confirm_timeout_s`` (its origin died, or the announcement was lost) is stored here too.
Duplicates in the log are harmless (Yjs updates are idempotent) and compaction merges them,
so the log holds exactly one record of each update normally, and a bounded few extra after a
crash. A gap in an origin's numbering, or a fan-out outage, makes the room reload from the
store, the source of truth, rather than drift silently.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from crdt.ports import (
    Clock,
    Fanout,
    FanoutGap,
    RemoteAccess,
    RemoteAwareness,
    RemoteCommitted,
    RemoteEvent,
    RemoteGone,
    RemoteUpdate,
    ReplicaTarget,
)

log = logging.getLogger(__name__)


class Replicator:
    def __init__(
        self,
        live: ReplicaTarget,
        fanout: Fanout,
        *,
        confirm_timeout_s: float,
        clock: Clock | None = None,
    ) -> None:
        self._live = live
        self._fanout = fanout
        self._confirm_timeout_s = confirm_timeout_s
        self._clock = clock or asyncio.get_running_loop().time
        self.seq = 0
        self._last_seen: dict[str, int] = {}
        # origin -> seq -> (update, received at)
        self._unconfirmed: dict[str, dict[int, tuple[bytes, float]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None

    @property
    def instance_id(self) -> str:
        return self._fanout.instance_id

    async def open(self) -> None:
        await self._fanout.open(self._live.doc_id, self.deliver)
        self._sweeper = asyncio.create_task(self._sweep_loop(), name=f"confirm:{self._live.doc_id}")

    async def close(self) -> None:
        for task in (self._sweeper, self._resync):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        await self._fanout.close(self._live.doc_id)
        # Whatever others have not confirmed yet is stored by us before the room goes.
        for origin in list(self._unconfirmed):
            self._store_unconfirmed(origin, older_than=None)

    # -- outgoing ------------------------------------------------------------------------

    def published(self, update: bytes) -> int:
        self.seq += 1
        self._fanout.publish(self._live.doc_id, RemoteUpdate(self.instance_id, self.seq, update))
        return self.seq

    def committed(self, seq: int) -> None:
        self._fanout.publish(self._live.doc_id, RemoteCommitted(self.instance_id, seq))

    def awareness(self, payload: bytes) -> None:
        self._fanout.publish(self._live.doc_id, RemoteAwareness(self.instance_id, payload))

    # -- incoming ------------------------------------------------------------------------

    def deliver(self, event: RemoteEvent) -> None:
        if isinstance(event, RemoteUpdate):
            self._remote_update(event)
        elif isinstance(event, RemoteCommitted):
            pending = self._unconfirmed.get(event.origin, {})
            for seq in [s for s in pending if s <= event.seq]:
                del pending[seq]
        elif isinstance(event, RemoteAwareness):
            self._live.remote_awareness(event.origin, event.payload)
        elif isinstance(event, RemoteAccess):
            self._live.access_changed(event.user_id, event.can_edit)
        elif isinstance(event, RemoteGone):
            self._live.origin_gone(event.origin)
            self._store_unconfirmed(event.origin, older_than=None)
            self._last_seen.pop(event.origin, None)
        else:
            assert isinstance(event, FanoutGap)
            self.request_resync(event.reason)

    def _remote_update(self, event: RemoteUpdate) -> None:
        last = self._last_seen.get(event.origin)
        if last is not None and event.seq > last + 1:
            self.request_resync(f"missed updates {last + 1}..{event.seq - 1} of {event.origin}")
        if last is None or event.seq > last:
            self._last_seen[event.origin] = event.seq
            now = self._clock()
            self._unconfirmed.setdefault(event.origin, {})[event.seq] = (event.update, now)
        self._live.apply_remote(event.update)

    def request_resync(self, reason: str) -> None:
        if self._resync is not None and not self._resync.done():
            return
        log.warning(
            "resyncing room from the store: %s", reason, extra={"project_id": self._live.doc_id}
        )
        self._resync = asyncio.create_task(self._live.reload(), name=f"resync:{self._live.doc_id}")

    # -- confirmation timeout ------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._confirm_timeout_s / 2)
            self.sweep()

    def sweep(self) -> None:
        """Store here every update of another instance still unconfirmed after the timeout."""
        for origin in list(self._unconfirmed):
            self._store_unconfirmed(origin, older_than=self._clock() - self._confirm_timeout_s)

    def _store_unconfirmed(self, origin: str, *, older_than: float | None) -> None:
        pending = self._unconfirmed.get(origin)
        if not pending:
            return
        due = [s for s, (_, t) in pending.items() if older_than is None or t <= older_than]
        for seq in sorted(due):
            self._live.accept(pending.pop(seq)[0], publish=False)
        if not pending:
            del self._unconfirmed[origin]

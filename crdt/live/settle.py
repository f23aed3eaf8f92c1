"""Work done once a room's edits settle (the projection, automatic versions: ``RoomHooks``).

After each commit the deadline moves to ``settle_ms`` from now, but never past ``settle_ms_max``
after the first unsettled commit, so a room edited without pause still settles that often.
Runs never overlap: each waits for the one before it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pycrdt import Doc

from crdt.live.settings import RoomSettings
from crdt.ports import Clock, RoomHooks

__all__ = ["Settler"]

log = logging.getLogger(__name__)


class Settler:
    def __init__(
        self, doc_id: str, doc: Doc[Any], hooks: RoomHooks, settings: RoomSettings, clock: Clock
    ) -> None:
        self._doc_id = doc_id
        self._doc = doc
        self._hooks = hooks
        self._settle_s = settings.settle_ms / 1000
        self._settle_s_max = settings.settle_ms_max / 1000
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._dirty_since: float | None = None
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """Edits were stored: settle once they pause."""
        now = self._clock()
        if self._dirty_since is None:
            self._dirty_since = now
        deadline = min(now + self._settle_s, self._dirty_since + self._settle_s_max)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(deadline - now, self._start)

    async def close(self) -> None:
        """Settle what is not settled yet, and wait for it (the room is unloading)."""
        if self._timer is not None:
            self._timer.cancel()
            self._start()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _start(self) -> None:
        self._timer = None
        self._dirty_since = None
        previous = self._running
        self._running = asyncio.create_task(self._run(previous), name=f"settle:{self._doc_id}")

    async def _run(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await self._hooks.settled(self._doc_id, self._doc)
        except Exception:
            log.exception("post-edit work failed", extra={"project_id": self._doc_id})

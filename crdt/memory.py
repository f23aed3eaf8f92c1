"""In-memory twins of the live layer's ports: a ``Fanout`` and a ``Clock``.

``MemoryFanout``: several ``Rooms`` in one process behave like several instances.

It keeps a short per-document log, so ``open`` replays recent events exactly as the Redis
fan-out does, and it can drop events or declare an instance gone, for tests of catch-up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from crdt.ports import FanoutGap, RemoteEvent, RemoteGone

_REPLAY_EVENTS_MAX = 10_000


@dataclass
class MemoryHub:
    fanouts: list[MemoryFanout] = field(default_factory=list)
    logs: dict[str, deque[tuple[str, RemoteEvent]]] = field(default_factory=dict)
    drop_next: int = 0  # events to lose, as a network blip would

    def gone(self, instance_id: str) -> None:
        """Tell every other instance that ``instance_id`` stopped (missed heartbeats)."""
        for fanout in self.fanouts:
            if fanout.instance_id != instance_id:
                fanout.deliver_all(RemoteGone(instance_id))

    def gap(self, reason: str = "outage") -> None:
        for fanout in self.fanouts:
            fanout.deliver_all(FanoutGap(reason))


class MemoryFanout:
    def __init__(self, hub: MemoryHub, instance_id: str) -> None:
        self.hub = hub
        self.instance_id = instance_id
        self._open: dict[str, Callable[[RemoteEvent], None]] = {}
        hub.fanouts.append(self)

    async def open(self, doc_id: str, deliver: Callable[[RemoteEvent], None]) -> None:
        self._open[doc_id] = deliver
        for origin, event in self.hub.logs.get(doc_id, ()):
            if origin != self.instance_id:
                deliver(event)

    async def close(self, doc_id: str) -> None:
        self._open.pop(doc_id, None)

    def publish(self, doc_id: str, event: RemoteEvent) -> None:
        log = self.hub.logs.setdefault(doc_id, deque(maxlen=_REPLAY_EVENTS_MAX))
        log.append((self.instance_id, event))
        if self.hub.drop_next > 0:
            self.hub.drop_next -= 1
            return
        loop = asyncio.get_running_loop()
        for other in self.hub.fanouts:
            deliver = other._open.get(doc_id)
            if other is not self and deliver is not None:
                loop.call_soon(deliver, event)

    def deliver_all(self, event: RemoteEvent) -> None:
        for deliver in list(self._open.values()):
            deliver(event)


class ManualClock:
    """A ``crdt.ports.Clock`` that moves only when told to: tests step time instead of
    waiting for it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

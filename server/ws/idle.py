"""Every open connection of this process: pings the quiet ones, closes the idle ones.

A connection that sent nothing for ``idle_timeout_s`` while it was not busy (nothing waiting to
go out to it, not throttled) is closed (4508). Pongs are not timed (see
``Settings.ws_ping_interval_s``): a pong queues behind whatever the server is still sending, so
it would cut off a client that is receiving a large document over a slow link. Pings go out
every ``ping_interval_s`` to keep intermediaries open; dead peers are found by inbound silence
instead (y-websocket clients renew their presence every 15 s). One sweep serves every
connection, instead of a timer each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from server.close_codes import CloseCode

# Monotonic seconds. The sweep and the connections it checks must read the same one.
Clock = Callable[[], float]


class Watched(Protocol):
    """What the sweep reads and does to one connection."""

    @property
    def user_id(self) -> str: ...

    # When a frame last arrived, and when a ping last went out (``Clock`` seconds).
    last_activity_s: float
    last_ping_s: float

    @property
    def busy(self) -> bool:
        """Something is still waiting to go out, or to be read (a throttled client)."""
        ...

    def close_with(self, code: int, reason: str) -> None: ...

    def ping(self) -> None: ...


def loop_clock() -> Clock:
    """The running event loop's time (what its timers use), else ``time.monotonic``."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:
        return time.monotonic


class IdleConnections:
    """The open connections, counted per user, and the sweep over them (see the module)."""

    def __init__(
        self,
        idle_timeout_s: float,
        ping_interval_s: float | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.ping_interval_s = ping_interval_s or None
        # Connections stamp their activity with this clock too (they read it from here).
        self.clock = clock or loop_clock()
        self.connections: set[Watched] = set()
        self.per_user: dict[str, int] = {}

    def add(self, conn: Watched) -> None:
        self.connections.add(conn)
        self.per_user[conn.user_id] = self.per_user.get(conn.user_id, 0) + 1

    def discard(self, conn: Watched) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_user[conn.user_id] - 1
            if left:
                self.per_user[conn.user_id] = left
            else:
                del self.per_user[conn.user_id]

    def sweep(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        idle_before = now - self.idle_timeout_s
        ping_before = now - self.ping_interval_s if self.ping_interval_s else None
        for conn in list(self.connections):
            if not conn.busy and conn.last_activity_s < idle_before:
                conn.close_with(CloseCode.IDLE_TIMEOUT, "idle: nothing received in time")
            elif ping_before is not None and conn.last_ping_s < ping_before:
                conn.ping()

    @property
    def period_s(self) -> float:
        """How often ``run`` sweeps: often enough that a timeout is overshot by a quarter."""
        period = self.idle_timeout_s / 4
        if self.ping_interval_s:
            period = min(period, self.ping_interval_s / 4)
        return max(0.05, period)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            self.sweep()

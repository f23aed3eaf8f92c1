"""The one sweep over every connection: idle ones close (4508), quiet ones get pinged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from server.close_codes import CloseCode
from server.ws.connection import IdleConnections


@dataclass(eq=False)
class FakeConnection:
    user_id: str
    last_activity_s: float
    last_ping_s: float
    sending: bool = False
    closed: list[int] = field(default_factory=list)
    pings: int = 0

    def close_with(self, code: int, reason: str) -> None:
        self.closed.append(code)

    def ping(self) -> None:
        self.pings += 1


def test_sweep_closes_idle_pings_quiet_and_spares_busy() -> None:
    idle = IdleConnections(idle_timeout_s=60, ping_interval_s=20)
    silent = FakeConnection("a", last_activity_s=0, last_ping_s=0)
    receiving = FakeConnection("b", last_activity_s=0, last_ping_s=0, sending=True)
    quiet = FakeConnection("c", last_activity_s=50, last_ping_s=30)
    fresh = FakeConnection("c", last_activity_s=99, last_ping_s=95)
    for conn in (silent, receiving, quiet, fresh):
        idle.add(cast(Any, conn))
    assert idle.per_user == {"a": 1, "b": 1, "c": 2}

    idle.sweep(now=100)

    assert silent.closed == [CloseCode.IDLE_TIMEOUT] and silent.pings == 0
    # Still receiving a large document: not idle, pinged like any quiet connection.
    assert receiving.closed == [] and receiving.pings == 1
    assert quiet.closed == [] and quiet.pings == 1
    assert fresh.closed == [] and fresh.pings == 0
    idle.discard(cast(Any, quiet))
    idle.discard(cast(Any, quiet))  # twice is harmless
    assert idle.per_user == {"a": 1, "b": 1, "c": 1}


def test_pings_off() -> None:
    idle = IdleConnections(idle_timeout_s=60, ping_interval_s=0)
    conn = FakeConnection("a", last_activity_s=90, last_ping_s=0)
    idle.add(cast(Any, conn))
    idle.sweep(now=100)
    assert conn.pings == 0 and conn.closed == []

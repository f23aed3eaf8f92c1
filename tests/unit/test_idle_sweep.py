"""The one sweep over every connection: idle ones close (4508), quiet ones get pinged."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.close_codes import CloseCode
from server.ws.idle import IdleConnections


@dataclass(eq=False)
class FakeConnection:
    user_id: str
    last_activity_s: float
    last_ping_s: float
    busy: bool = False
    closed: list[int] = field(default_factory=list)
    pings: int = 0

    def close_with(self, code: int, reason: str) -> None:
        self.closed.append(code)

    def ping(self) -> None:
        self.pings += 1


class ManualClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sweep_closes_idle_pings_quiet_and_spares_busy() -> None:
    clock = ManualClock(100)
    idle = IdleConnections(idle_timeout_s=60, ping_interval_s=20, clock=clock)
    silent = FakeConnection("a", last_activity_s=0, last_ping_s=0)
    # Still receiving a large document, or throttled with more to send: busy, not idle.
    receiving = FakeConnection("b", last_activity_s=0, last_ping_s=0, busy=True)
    quiet = FakeConnection("c", last_activity_s=50, last_ping_s=30)
    fresh = FakeConnection("c", last_activity_s=99, last_ping_s=95)
    for conn in (silent, receiving, quiet, fresh):
        idle.add(conn)
    assert idle.per_user == {"a": 1, "b": 1, "c": 2}

    idle.sweep()  # at the clock's time

    assert silent.closed == [CloseCode.IDLE_TIMEOUT] and silent.pings == 0
    assert receiving.closed == [] and receiving.pings == 1  # pinged like any quiet one
    assert quiet.closed == [] and quiet.pings == 1
    assert fresh.closed == [] and fresh.pings == 0
    idle.discard(quiet)
    idle.discard(quiet)  # twice is harmless
    assert idle.per_user == {"a": 1, "b": 1, "c": 1}

    clock.now = 160  # fresh went quiet 61 s ago
    idle.sweep()
    assert fresh.closed == [CloseCode.IDLE_TIMEOUT]
    assert receiving.closed == []


def test_pings_off() -> None:
    idle = IdleConnections(idle_timeout_s=60, ping_interval_s=0, clock=ManualClock(100))
    conn = FakeConnection("a", last_activity_s=90, last_ping_s=0)
    idle.add(conn)
    idle.sweep()
    assert conn.pings == 0 and conn.closed == []


def test_sweeps_often_enough_for_the_shorter_of_timeout_and_ping_interval() -> None:
    assert IdleConnections(60, 20).period_s == 5
    assert IdleConnections(8, 0).period_s == 2
    assert IdleConnections(0.1, 0).period_s == 0.05  # but not in a busy loop

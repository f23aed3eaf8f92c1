"""Per-user rate limits for AI operations: GCRA, in Redis (atomic, shared by every instance)
or in memory (one instance).

GCRA (the generic cell rate algorithm) keeps one timestamp per key, the theoretical arrival
time (TAT) of the next request. A limit of ``count`` per ``period_s`` spaces requests
``period_s / count`` apart and lets ``burst`` of them through at once. A request is allowed
when ``TAT - burst * interval <= now``; then TAT moves one interval on. A refused request
changes nothing and learns exactly when to retry. In Redis, one Lua script reads and writes
the key atomically on Redis's own clock, so instances with skewed clocks agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Decision", "MemoryRateLimiter", "Rate", "RateLimiter", "RedisRateLimiter"]

KEY_PREFIX: Final = "flowai:rl:"
MEMORY_KEYS_MAX: Final = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    period_s: int
    burst: int | None = None  # None: the whole ``count`` may arrive at once

    def __post_init__(self) -> None:
        if self.count < 1 or self.period_s < 1 or (self.burst is not None and self.burst < 1):
            raise ValueError("a rate needs count, period and burst of at least 1")

    @property
    def interval_ms(self) -> int:
        return max(1, math.ceil(self.period_s * 1000 / self.count))

    @property
    def tolerance_ms(self) -> int:
        return self.interval_ms * (self.burst or self.count)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> Decision: ...


def _gcra(tat_ms: int | None, now_ms: int, rate: Rate) -> tuple[Decision, int | None]:
    """The decision and the new TAT (None when refused, nothing changes)."""
    tat = max(tat_ms or now_ms, now_ms)
    new_tat = tat + rate.interval_ms
    allow_at = new_tat - rate.tolerance_ms
    if now_ms < allow_at:
        return Decision(False, (allow_at - now_ms) / 1000), None
    return Decision(True), new_tat


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, int] = {}

    async def hit(self, key: str, rate: Rate) -> Decision:
        now_ms = int(self._clock() * 1000)
        decision, new_tat = _gcra(self._tat.get(key), now_ms, rate)
        if new_tat is not None:
            if len(self._tat) >= MEMORY_KEYS_MAX:
                # Keys whose TAT has passed hold no state worth keeping.
                self._tat = {k: v for k, v in self._tat.items() if v > now_ms}
            self._tat[key] = new_tat
        return decision


# KEYS[1]: the key. ARGV: interval ms, tolerance ms. Returns {allowed, retry_after_ms}.
_GCRA_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0}
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script: Any = redis.register_script(_GCRA_LUA)

    async def hit(self, key: str, rate: Rate) -> Decision:
        allowed, retry_ms = await self._script(
            keys=[KEY_PREFIX + key], args=[rate.interval_ms, rate.tolerance_ms]
        )
        return Decision(bool(allowed), int(retry_ms) / 1000)

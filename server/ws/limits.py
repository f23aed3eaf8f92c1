"""Per-connection limits, pure: the clock is passed in.

Out: a frame is queued straight into the connection's transport buffer, and a connection whose
buffer would exceed its budget is closed (1013; the client resyncs on reconnect) instead of
buffered without limit. A frame is always admitted into an empty buffer, so a full state larger
than the budget still reaches a joiner.

In: messages and bytes per second, as token buckets. A client over either is slowed, not cut
off: what it sent beyond them waits, in order, and is handled as the buckets refill, while its
socket is not read (TCP pushes back on the sender). Only a client that stays throttled for more
than ``close_after_s`` (what still waits included) is closed (4529).
"""

from __future__ import annotations

from dataclasses import dataclass

# Waiting messages are handled once the buckets hold this much of a second's allowance (at most
# their burst): in batches, each a small slice of the event loop's time, not one per timer.
_BATCH_S = 0.1
# A throttled stretch that starts within this long of the last one's end continues it; a
# client that went this long without anything waiting is back within its limits.
_RECOVERED_S = 1.0


def send_admitted(buffered_bytes: int, frame_bytes: int, budget_bytes: int) -> bool:
    """Whether a frame of ``frame_bytes`` may be queued behind ``buffered_bytes``."""
    return buffered_bytes == 0 or buffered_bytes + frame_bytes <= budget_bytes


@dataclass(slots=True)
class TokenBucket:
    """Tokens refill at ``rate_per_s`` up to ``burst``."""

    rate_per_s: float
    burst: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate_per_s: float, burst: float, now_s: float) -> TokenBucket:
        return cls(rate_per_s, burst, burst, now_s)

    def refill(self, now_s: float) -> None:
        elapsed = now_s - self.updated_s
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
            self.updated_s = now_s

    def has(self, amount: float) -> bool:
        """Whether ``amount`` may be spent now; more than the burst, once the bucket is full
        (it then runs into debt: one message larger than the burst still goes through)."""
        return self.tokens >= min(amount, self.burst)

    def seconds_until(self, level: float, now_s: float) -> float:
        """How long until the bucket holds ``level`` tokens (0 if it already does)."""
        self.refill(now_s)
        level = min(level, self.burst)
        if self.tokens >= level:
            return 0.0
        return (level - self.tokens) / self.rate_per_s if self.rate_per_s > 0 else float("inf")


@dataclass(slots=True)
class InboundLimit:
    """What one client may send: messages and bytes per second (see the module)."""

    messages: TokenBucket
    volume: TokenBucket
    close_after_s: float
    # When the current throttled stretch started, and when the last one ended.
    throttled_since_s: float = float("-inf")
    caught_up_s: float = float("-inf")
    # Throttled stretches so far (for tests and figures).
    stretches: int = 0

    @classmethod
    def full(
        cls,
        messages_per_s: float,
        messages_burst: float,
        bytes_per_s: float,
        bytes_burst: float,
        close_after_s: float,
        now_s: float,
    ) -> InboundLimit:
        return cls(
            TokenBucket.full(messages_per_s, messages_burst, now_s),
            TokenBucket.full(bytes_per_s, bytes_burst, now_s),
            close_after_s,
        )

    def take(self, size: int, now_s: float) -> bool:
        """Spend one message of ``size`` bytes if both buckets allow it now (else nothing)."""
        # On every message: ``refill`` and ``has`` of both buckets, written out.
        messages, volume = self.messages, self.volume
        elapsed = now_s - messages.updated_s
        if elapsed > 0:
            messages.tokens = min(messages.burst, messages.tokens + elapsed * messages.rate_per_s)
            messages.updated_s = now_s
        elapsed = now_s - volume.updated_s
        if elapsed > 0:
            volume.tokens = min(volume.burst, volume.tokens + elapsed * volume.rate_per_s)
            volume.updated_s = now_s
        if messages.tokens >= min(1, messages.burst) and volume.tokens >= min(size, volume.burst):
            messages.tokens -= 1
            volume.tokens -= size
            return True
        return False

    def charge(self, size: int, now_s: float) -> None:
        """Spend one message whatever the buckets hold (what a client sends before it is
        admitted waits in a queue of its own, capped, and still counts)."""
        self.messages.refill(now_s)
        self.volume.refill(now_s)
        self.messages.tokens -= 1
        self.volume.tokens -= size

    def wait_s(self, size: int, now_s: float) -> float:
        """How long until a message of ``size`` bytes, and a batch behind it, may be taken."""
        return max(
            self.messages.seconds_until(max(1.0, _batch(self.messages)), now_s),
            self.volume.seconds_until(max(float(size), _batch(self.volume)), now_s),
        )

    def throttled(self, now_s: float) -> None:
        """Messages started waiting: a new stretch, or the last one again if it just ended."""
        if now_s - self.caught_up_s > _RECOVERED_S:
            self.throttled_since_s = now_s
            self.stretches += 1

    def caught_up(self, now_s: float) -> None:
        """Nothing waits any more."""
        self.caught_up_s = now_s

    def overdue(self, now_s: float, waiting_messages: int, waiting_bytes: int) -> bool:
        """Whether the stretch, until what waits is handled, lasts over ``close_after_s``."""
        messages, volume = self.messages, self.volume
        if messages.rate_per_s <= 0 or volume.rate_per_s <= 0:
            return True  # it would never end
        # Tokens in hand shorten it; a debt (from before admission) lengthens it.
        left_s = max(
            (waiting_messages - messages.tokens) / messages.rate_per_s,
            (waiting_bytes - volume.tokens) / volume.rate_per_s,
            0.0,
        )
        return now_s + left_s - self.throttled_since_s > self.close_after_s


def _batch(bucket: TokenBucket) -> float:
    return bucket.rate_per_s * _BATCH_S

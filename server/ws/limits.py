"""Per-connection limits, pure: the clock is passed in.

Out: a frame is queued straight into the connection's transport buffer, and a connection whose
buffer would exceed its budget is closed (1013; the client resyncs on reconnect) instead of
buffered without limit. A frame is always admitted into an empty buffer, so a full state larger
than the budget still reaches a joiner.

In: messages and bytes per second, as token buckets. A client over either is slowed, not cut
off: every message it sent is still handled, in order, but the connection stops reading
(``InboundLimit.pause_s``) until the buckets have refilled, and TCP pushes back on the sender.
Only a client that stays throttled for more than ``close_after_s`` (its debt included) is
closed (4529).
"""

from __future__ import annotations

from dataclasses import dataclass

# Reading resumes once both buckets hold this much of a second's allowance (at most their
# burst): a throttled client then sends in batches, not one pause per message.
_RESUME_S = 0.1
# A pause that starts within this long of the last resume continues the same throttled
# stretch; a client that went this long without being paused is back within its limits.
_RECOVERED_S = 1.0


def send_admitted(buffered_bytes: int, frame_bytes: int, budget_bytes: int) -> bool:
    """Whether a frame of ``frame_bytes`` may be queued behind ``buffered_bytes``."""
    return buffered_bytes == 0 or buffered_bytes + frame_bytes <= budget_bytes


@dataclass(slots=True)
class TokenBucket:
    """Tokens refill at ``rate_per_s`` up to ``burst``; spending may run them into debt."""

    rate_per_s: float
    burst: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, rate_per_s: float, burst: float, now_s: float) -> TokenBucket:
        return cls(rate_per_s, burst, burst, now_s)

    def charge(self, amount: float, now_s: float) -> bool:
        """Spend ``amount`` (into debt if need be); False when that left the bucket in debt."""
        elapsed = now_s - self.updated_s
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
            self.updated_s = now_s
        self.tokens -= amount
        return self.tokens >= 0

    def seconds_until(self, level: float, now_s: float) -> float:
        """How long until the bucket holds ``level`` tokens (0 if it already does)."""
        elapsed = max(0.0, now_s - self.updated_s)
        tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        if tokens >= level:
            return 0.0
        return (level - tokens) / self.rate_per_s if self.rate_per_s > 0 else float("inf")


@dataclass(slots=True)
class InboundLimit:
    """What one client may send: messages and bytes per second (see the module)."""

    messages: TokenBucket
    volume: TokenBucket
    close_after_s: float
    # Since when the client has been throttled without a break (None: it is not).
    throttled_since_s: float | None = None
    resumed_s: float = float("-inf")
    pauses: int = 0

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

    def charge(self, size: int, now_s: float) -> bool:
        """Count one message of ``size`` bytes; False once the client is over a limit."""
        # Both are charged: every message counts, also one that arrives over the limit.
        return self.messages.charge(1, now_s) & self.volume.charge(size, now_s)

    @property
    def over(self) -> bool:
        return self.messages.tokens < 0 or self.volume.tokens < 0

    def pause_s(self, now_s: float) -> float | None:
        """The client is over: how long to stop reading it, or None when that would leave it
        throttled for more than ``close_after_s`` without a break (close it)."""
        since = self.throttled_since_s
        if since is None or now_s - self.resumed_s > _RECOVERED_S:
            since = self.throttled_since_s = now_s
        pause_s = max(
            self.messages.seconds_until(_resume_level(self.messages), now_s),
            self.volume.seconds_until(_resume_level(self.volume), now_s),
        )
        # Also a bucket that never refills (a rate of 0): an infinite pause.
        if now_s + pause_s - since > self.close_after_s:
            return None
        self.pauses += 1
        return pause_s

    def resumed(self, now_s: float) -> None:
        self.resumed_s = now_s


def _resume_level(bucket: TokenBucket) -> float:
    return min(bucket.burst, bucket.rate_per_s * _RESUME_S)

"""Per-connection limits: the send budget, and inbound limits that slow before they cut."""

from __future__ import annotations

import pytest

from server.ws.limits import InboundLimit, TokenBucket, send_admitted


def test_send_budget_is_bytes_but_admits_one_large_frame() -> None:
    assert send_admitted(0, 50, budget_bytes=10)  # an empty buffer always takes one frame
    assert not send_admitted(50, 1, budget_bytes=10)
    assert send_admitted(6, 4, budget_bytes=10)
    assert not send_admitted(6, 5, budget_bytes=10)


def test_token_bucket_refills_up_to_its_burst() -> None:
    bucket = TokenBucket.full(rate_per_s=2, burst=4, now_s=0)
    bucket.tokens = -1
    assert bucket.seconds_until(1, 0) == pytest.approx(1.0)  # -1 -> 1 at 2 per second
    bucket.refill(100)
    assert bucket.tokens == 4
    assert bucket.seconds_until(10, 100) == 0  # never more than the burst is waited for
    assert bucket.has(3) and bucket.has(40)  # full: one amount over the burst goes through
    bucket.tokens = 3.5
    assert bucket.has(3) and not bucket.has(40)


def test_a_bucket_that_never_refills_waits_forever() -> None:
    bucket = TokenBucket.full(rate_per_s=0, burst=1, now_s=0)
    bucket.tokens = -1
    assert bucket.seconds_until(0, 10) == float("inf")
    limit = InboundLimit(bucket, TokenBucket.full(1000, 1000, 0), close_after_s=10)
    limit.throttled(0)
    assert limit.overdue(0, 1, 1)


def _limit(close_after_s: float = 10) -> InboundLimit:
    # 10 messages/s (burst 10), 1000 bytes/s (burst 1000)
    return InboundLimit.full(10, 10, 1000, 1000, close_after_s, now_s=0)


def test_messages_are_taken_while_both_buckets_allow_and_nothing_is_spent_otherwise() -> None:
    limit = _limit()
    assert all(limit.take(10, 0) for _ in range(10))
    assert not limit.take(10, 0)  # the eleventh message waits
    assert limit.messages.tokens == 0 and limit.volume.tokens == 900
    assert limit.take(10, 0.1)  # a tenth of a second later: one more
    heavy = _limit()
    assert heavy.take(600, 0)
    assert not heavy.take(600, 0)  # too many bytes
    assert heavy.messages.tokens == 9  # and no message spent for it
    alone = _limit()
    assert alone.take(5000, 0)  # larger than the byte burst: goes through on a full bucket
    assert alone.volume.tokens == -4000


def test_what_a_client_sends_before_admission_is_charged_regardless() -> None:
    limit = _limit()
    for _ in range(12):
        limit.charge(1, 0)
    assert limit.messages.tokens == -2
    assert not limit.take(1, 0)


def test_waiting_messages_are_taken_in_batches_of_a_tenth_of_a_second() -> None:
    limit = _limit()
    for _ in range(10):
        limit.take(100, 0)
    # Empty: one message (and a batch of one at 10/s) in 0.1 s.
    assert limit.wait_s(1, 0) == pytest.approx(0.1)
    # The byte bucket decides when it is the emptier one: 500 bytes at 1000/s.
    assert limit.wait_s(500, 0) == pytest.approx(0.5)


def test_only_a_client_throttled_without_a_break_for_the_interval_is_closed() -> None:
    limit = _limit(close_after_s=3)
    for _ in range(10):
        limit.take(1, 0)
    limit.throttled(0)
    assert not limit.overdue(0, 20, 20)  # 2 s of waiting messages at 10/s
    assert limit.overdue(0, 40, 40)  # 4 s: over the interval already
    assert limit.overdue(2.5, 10, 10)  # 2.5 s in, another second to go
    limit.caught_up(2.5)
    limit.throttled(3.0)  # again within a second: the same stretch
    assert limit.stretches == 1 and limit.overdue(3.0, 1, 1)
    limit.caught_up(3.1)
    limit.throttled(5.0)  # after a quiet stretch: afresh
    assert limit.stretches == 2 and not limit.overdue(5.0, 20, 20)
    limit.messages.tokens = -20  # owed from before admission: counted in
    assert limit.overdue(5.0, 20, 20)

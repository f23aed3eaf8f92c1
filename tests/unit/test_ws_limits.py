"""Per-connection limits: the send budget, and inbound limits that slow before they cut."""

from __future__ import annotations

import pytest

from server.ws.limits import InboundLimit, TokenBucket, send_admitted


def test_send_budget_is_bytes_but_admits_one_large_frame() -> None:
    assert send_admitted(0, 50, budget_bytes=10)  # an empty buffer always takes one frame
    assert not send_admitted(50, 1, budget_bytes=10)
    assert send_admitted(6, 4, budget_bytes=10)
    assert not send_admitted(6, 5, budget_bytes=10)


def test_token_bucket_runs_into_debt_and_refills_up_to_its_burst() -> None:
    bucket = TokenBucket.full(rate_per_s=2, burst=4, now_s=0)
    assert all(bucket.charge(1, 0) for _ in range(4))
    assert not bucket.charge(1, 0)  # spent all the same: one in debt
    assert bucket.tokens == -1
    assert bucket.seconds_until(1, 0) == pytest.approx(1.0)  # -1 -> 1 at 2 per second
    assert not bucket.charge(0, 0.25)
    assert bucket.charge(1, 1.0)
    assert bucket.seconds_until(0, 1.0) == 0
    assert bucket.charge(4, 100)  # refills up to the burst only
    assert not bucket.charge(1, 100)


def test_a_bucket_that_never_refills_waits_forever() -> None:
    bucket = TokenBucket.full(rate_per_s=0, burst=1, now_s=0)
    assert not bucket.charge(2, 0)
    assert bucket.seconds_until(0, 10) == float("inf")
    limit = InboundLimit(bucket, TokenBucket.full(1000, 1000, 0), close_after_s=10)
    assert limit.pause_s(0) is None


def test_one_burst_that_takes_longer_than_the_interval_to_pay_off_is_closed_at_once() -> None:
    limit = _limit(close_after_s=3)
    for _ in range(45):
        limit.charge(1, 0)
    assert limit.pause_s(0) is None  # 3.6 s of debt


def _limit(close_after_s: float = 10) -> InboundLimit:
    # 10 messages/s (burst 10), 1000 bytes/s (burst 1000)
    return InboundLimit.full(10, 10, 1000, 1000, close_after_s, now_s=0)


def test_inbound_limit_counts_messages_and_bytes() -> None:
    limit = _limit()
    assert all(limit.charge(10, 0) for _ in range(10))
    assert not limit.over
    assert not limit.charge(10, 0)  # the eleventh message
    assert limit.over
    bytes_only = _limit()
    assert not bytes_only.charge(1001, 0)  # one message, too many bytes
    assert bytes_only.over and bytes_only.messages.tokens == 9


def test_a_paused_client_resumes_once_a_tenth_of_a_second_refilled() -> None:
    limit = _limit()
    for _ in range(15):
        limit.charge(1, 0)
    # -5 messages: back to +1 (a tenth of 10/s) at 10 per second takes 0.6 s.
    assert limit.pause_s(0) == pytest.approx(0.6)
    assert limit.pauses == 1
    # The byte bucket decides when it is the emptier one.
    heavy = _limit()
    heavy.charge(3000, 0)
    assert heavy.pause_s(0) == pytest.approx(2.1)  # -2000 -> +100 at 1000/s


def test_only_a_client_throttled_without_a_break_for_the_interval_is_closed() -> None:
    limit = _limit(close_after_s=3)
    now = 0.0
    for _ in range(15):
        limit.charge(1, now)
    while True:  # it sends again as soon as it is read again: throttled throughout
        pause_s = limit.pause_s(now)
        if pause_s is None:
            break
        now += pause_s
        limit.resumed(now)
        for _ in range(5):
            limit.charge(1, now)
        assert now < 10, "never closed"
    assert 2.5 <= now < 3  # the next pause would have taken it past 3 s
    # One that gets back within its limits between two bursts starts afresh each time.
    calm = _limit(close_after_s=3)
    now = 0.0
    for _ in range(10):
        for _ in range(15):
            calm.charge(1, now)
        pause_s = calm.pause_s(now)
        assert pause_s is not None
        now += pause_s
        calm.resumed(now)
        now += 2.0  # a quiet stretch: the buckets refill
    assert now > 3 * 3

from __future__ import annotations

from server.ws.backpressure import send_admitted
from server.ws.rate_limit import TokenBucket


def test_send_budget_is_bytes_but_admits_one_large_frame() -> None:
    assert send_admitted(0, 50, budget_bytes=10)  # an empty buffer always takes one frame
    assert not send_admitted(50, 1, budget_bytes=10)
    assert send_admitted(6, 4, budget_bytes=10)
    assert not send_admitted(6, 5, budget_bytes=10)


def test_token_bucket() -> None:
    bucket = TokenBucket.full(rate_per_s=2, burst=4, now_s=0)
    assert all(bucket.take(1, 0) for _ in range(4))
    assert not bucket.take(1, 0)
    assert bucket.take(1, 0.5)
    assert not bucket.take(1, 0.5)
    assert bucket.take(4, 100)  # refills up to the burst only
    assert not bucket.take(1, 100)

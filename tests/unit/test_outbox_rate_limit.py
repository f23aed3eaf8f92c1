from __future__ import annotations

from crdt.outbox import Outbox
from server.rate_limit import TokenBucket


async def test_outbox_is_bounded_in_bytes_but_admits_one_large_frame() -> None:
    box = Outbox(bytes_max=10)
    assert box.put(b"x" * 50)  # an empty queue always takes one frame
    assert not box.put(b"y")
    assert await box.get() == b"x" * 50
    assert box.put(b"a" * 6)
    assert not box.put(b"b" * 6)
    assert box.put(b"c" * 4)
    assert box.queued_bytes == 10
    assert await box.get() == b"a" * 6
    box.close()
    assert await box.get() is None
    assert box.queued_bytes == 0


def test_token_bucket() -> None:
    bucket = TokenBucket.full(rate_per_s=2, burst=4, now_s=0)
    assert all(bucket.take(1, 0) for _ in range(4))
    assert not bucket.take(1, 0)
    assert bucket.take(1, 0.5)
    assert not bucket.take(1, 0.5)
    assert bucket.take(4, 100)  # refills up to the burst only
    assert not bucket.take(1, 100)

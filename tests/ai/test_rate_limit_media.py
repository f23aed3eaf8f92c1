"""GCRA rate limiting in memory and in Redis (one algorithm, two stores), and the local media
store's signed links."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ai.errors import MediaNotFound
from ai.media import LocalMediaStore, check_key, key_of, media_uri
from ai.rate_limit import MemoryRateLimiter, Rate, RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_gcra_allows_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    rate = Rate(3, 60)  # 3 a minute: one every 20 s, all 3 at once
    assert [(await limiter.hit("k", rate)).allowed for _ in range(4)] == [True, True, True, False]
    refused = await limiter.hit("k", rate)
    assert refused.retry_after_s == pytest.approx(20)
    clock.now += 19.9
    assert not (await limiter.hit("k", rate)).allowed
    clock.now += 0.1
    assert (await limiter.hit("k", rate)).allowed
    assert not (await limiter.hit("k", rate)).allowed
    assert (await limiter.hit("other", rate)).allowed
    clock.now += 3600
    assert [(await limiter.hit("k", rate)).allowed for _ in range(4)] == [True, True, True, False]


async def test_burst_smaller_than_the_count() -> None:
    limiter = MemoryRateLimiter(Clock())
    rate = Rate(60, 60, burst=2)
    assert [(await limiter.hit("k", rate)).allowed for _ in range(3)] == [True, True, False]


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


async def test_redis_gcra_agrees_with_memory(redis: Redis) -> None:
    limiter = RedisRateLimiter(redis)
    key = f"test:{uuid.uuid4().hex}"
    rate = Rate(3, 3600)
    decisions = [await limiter.hit(key, rate) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 1190 <= decisions[-1].retry_after_s <= 1200
    # The key expires on its own once the limit has fully recovered.
    ttl_ms = await redis.pttl(f"flowai:rl:{key}")
    assert 3_590_000 <= ttl_ms <= 3_600_000
    await redis.delete(f"flowai:rl:{key}")


async def test_local_media_links_are_signed_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    store = LocalMediaStore(tmp_path, secret=b"s" * 32, clock=clock)
    await store.put_bytes("projects/p/a.png", b"png", "image/png")
    url = await store.url("projects/p/a.png", ttl_s=60)
    path, _, query = url.partition("?")
    params = dict(part.split("=") for part in query.split("&"))
    assert path == "/media/projects/p/a.png"
    assert store.verify("projects/p/a.png", int(params["exp"]), params["sig"])
    assert not store.verify("projects/p/b.png", int(params["exp"]), params["sig"])
    assert not store.verify("projects/p/a.png", int(params["exp"]) + 1, params["sig"])
    clock.now += 61
    assert not store.verify("projects/p/a.png", int(params["exp"]), params["sig"])
    target = tmp_path / "copy"
    await store.get_file("projects/p/a.png", target)
    assert target.read_bytes() == b"png"
    await store.delete("projects/p/a.png")
    with pytest.raises(MediaNotFound):
        await store.get_file("projects/p/a.png", target)


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "", "a b", "x" * 600]
)
def test_unsafe_media_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)
    assert key_of("media://" + key) is None


def test_media_uris() -> None:
    assert media_uri("projects/p/a.mp4") == "media://projects/p/a.mp4"
    assert key_of("media://projects/p/a.mp4") == "projects/p/a.mp4"
    assert key_of("https://example.com/a.mp4") is None

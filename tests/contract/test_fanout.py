"""One contract for every ``crdt.ports.Fanout``: the in-process twin and Redis carry a room's
events between instances the same way, so the replication tests run on the twin hold for
Redis too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from crdt.memory import MemoryFanout, MemoryHub
from crdt.ports import (
    Fanout,
    RemoteAccess,
    RemoteAwareness,
    RemoteCommitted,
    RemoteEvent,
    RemoteUpdate,
)
from server.fanout_redis import RedisFanout
from tests.support.yclient import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Pair:
    """Two instances of one fan-out, as two servers holding the same rooms."""

    a: Fanout
    b: Fanout


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        hub = MemoryHub()
        yield Pair(MemoryFanout(hub, "a"), MemoryFanout(hub, "b"))
        return
    a, b = RedisFanout(REDIS_URL, block_ms=20), RedisFanout(REDIS_URL, block_ms=20)
    await a.start()
    await b.start()
    try:
        yield Pair(a, b)
    finally:
        await a.stop()
        await b.stop()


def _doc() -> str:
    return str(uuid.uuid4())


async def test_events_reach_the_other_instance_in_order_and_not_their_own(pair: Pair) -> None:
    doc = _doc()
    got_a: list[RemoteEvent] = []
    got_b: list[RemoteEvent] = []
    await pair.a.open(doc, got_a.append)
    await pair.b.open(doc, got_b.append)
    sent: list[RemoteEvent] = [
        RemoteUpdate(pair.a.instance_id, 1, b"\x01\x02"),
        RemoteUpdate(pair.a.instance_id, 2, b"\x03"),
        RemoteCommitted(pair.a.instance_id, 2),
        RemoteAccess("bob", False),
        RemoteAccess("carol", None),
    ]
    for event in sent:
        pair.a.publish(doc, event)
    await eventually(lambda: len(got_b) >= len(sent))
    assert got_b == sent
    assert got_a == []


async def test_presence_reaches_the_other_instance(pair: Pair) -> None:
    doc = _doc()
    got: list[RemoteEvent] = []
    await pair.a.open(doc, lambda _event: None)
    await pair.b.open(doc, got.append)
    presence = RemoteAwareness(pair.a.instance_id, b"\x01\x00")
    # Presence is not kept (Redis sends it by Pub/Sub, live only), so it is sent until it
    # arrives, as rooms renew presence; every copy that arrives is the same event.
    for _ in range(50):
        pair.a.publish(doc, presence)
        await asyncio.sleep(0.05)
        if got:
            break
    assert got and all(event == presence for event in got)


async def test_an_instance_that_opens_late_gets_what_was_published_before(pair: Pair) -> None:
    doc = _doc()
    await pair.a.open(doc, lambda _event: None)
    early = RemoteUpdate(pair.a.instance_id, 1, b"\x07")
    pair.a.publish(doc, early)
    if isinstance(pair.a, RedisFanout):
        await pair.a._flush_outbox(timeout_s=2)  # on the stream before b looks
    got: list[RemoteEvent] = []
    await pair.b.open(doc, got.append)
    await eventually(lambda: early in got)


async def test_a_closed_room_hears_nothing_more_and_rooms_are_kept_apart(pair: Pair) -> None:
    doc, other = _doc(), _doc()
    got: list[RemoteEvent] = []
    got_other: list[RemoteEvent] = []
    await pair.b.open(doc, got.append)
    await pair.b.open(other, got_other.append)
    pair.a.publish(doc, RemoteUpdate(pair.a.instance_id, 1, b"\x01"))
    await eventually(lambda: len(got) == 1)
    await pair.b.close(doc)
    pair.a.publish(doc, RemoteUpdate(pair.a.instance_id, 2, b"\x02"))
    marker = RemoteUpdate(pair.a.instance_id, 1, b"\x09")
    pair.a.publish(other, marker)  # published after, so delivered after the one to ``doc``
    await eventually(lambda: marker in got_other)
    assert got == [RemoteUpdate(pair.a.instance_id, 1, b"\x01")]
    assert got_other == [marker]

"""The Redis ``Fanout``: document updates on Redis Streams, presence on Pub/Sub.

Why these structures:
- Updates (and "stored up to" markers, role changes) go to one stream per document,
  ``flowai:v1:doc:{id}``. A stream keeps recent history, so an instance that opens a room, or
  comes back after a Redis blip, reads what it missed instead of diverging silently. Memory
  is bounded: every append trims entries older than ``retention`` (``MINID``), and the key
  expires when the document goes quiet. Anything older is in PostgreSQL, and an instance
  that cannot prove it saw everything reloads the room from there.
- Presence goes through Pub/Sub, ``flowai:v1:aw:{id}``: cursors change many times a second and
  only the latest value matters, so nothing about them is stored in Redis.
- Each instance refreshes ``flowai:v1:instance:{id}`` (a key with a TTL); when an instance's
  key expires the others drop the presence it relayed.

One task reads every open stream with a single blocking ``XREAD``; one task writes, in order,
and keeps a bounded backlog while Redis is unreachable. Clients of this instance are served
throughout an outage; after it, every open room reloads from the store and the backlog is
published, so instances reconverge without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from crdt.ports import (
    FanoutGap,
    RemoteAccess,
    RemoteAwareness,
    RemoteCommitted,
    RemoteEvent,
    RemoteGone,
    RemoteUpdate,
)

log = logging.getLogger(__name__)

_PREFIX = "flowai:v1"
_ORIGIN_LEN = 32  # uuid4().hex


def _stream(doc_id: str) -> str:
    return f"{_PREFIX}:doc:{doc_id}"


def _channel(doc_id: str) -> str:
    return f"{_PREFIX}:aw:{doc_id}"


def _instance_key(instance_id: str) -> str:
    return f"{_PREFIX}:instance:{instance_id}"


def encode_event(event: RemoteEvent, sender: str = "") -> dict[str, bytes]:
    """The stream entry of ``event``; ``sender`` is the publishing instance, recorded for
    events that name no origin of their own (access changes), so it can skip its own."""
    if isinstance(event, RemoteUpdate):
        return {"k": b"u", "o": event.origin.encode(), "s": b"%d" % event.seq, "p": event.update}
    if isinstance(event, RemoteCommitted):
        return {"k": b"c", "o": event.origin.encode(), "s": b"%d" % event.seq}
    if isinstance(event, RemoteAccess):
        can = b"-" if event.can_edit is None else (b"1" if event.can_edit else b"0")
        return {"k": b"x", "o": sender.encode(), "u": event.user_id.encode(), "e": can}
    raise TypeError(f"{type(event).__name__} does not travel on the stream")


def decode_event(fields: dict[bytes, bytes]) -> RemoteEvent | None:
    kind = fields.get(b"k")
    origin = fields.get(b"o", b"").decode()
    if kind == b"u":
        return RemoteUpdate(origin, int(fields[b"s"]), fields[b"p"])
    if kind == b"c":
        return RemoteCommitted(origin, int(fields[b"s"]))
    if kind == b"x":
        can = fields[b"e"]
        return RemoteAccess(fields[b"u"].decode(), None if can == b"-" else can == b"1")
    return None


class RedisFanout:
    """Implements ``crdt.ports.Fanout``."""

    def __init__(
        self,
        url: str,
        *,
        retention_s: float = 300,
        replay_s: float = 60,
        heartbeat_s: float = 5,
        backlog_max: int = 100_000,
        block_ms: int = 200,
    ) -> None:
        self.instance_id = uuid.uuid4().hex
        self._redis: Any = aioredis.from_url(url, decode_responses=False)
        self._retention_ms = int(retention_s * 1000)
        self._replay_ms = int(replay_s * 1000)
        self._heartbeat_s = heartbeat_s
        self._block_ms = block_ms
        self._deliver: dict[str, Callable[[RemoteEvent], None]] = {}
        self._last_id: dict[str, bytes] = {}
        self._outbox: deque[tuple[str, RemoteEvent]] = deque(maxlen=backlog_max)
        self._outbox_ready = asyncio.Event()
        self._outbox_empty = asyncio.Event()
        self._origins: dict[str, int] = {}  # origin -> consecutive missed heartbeats
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.connected = True

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        self._tasks = [
            asyncio.create_task(self._read_streams(), name="fanout:streams"),
            asyncio.create_task(self._read_presence(), name="fanout:presence"),
            asyncio.create_task(self._write(), name="fanout:write"),
            asyncio.create_task(self._heartbeat(), name="fanout:heartbeat"),
        ]

    async def stop(self) -> None:
        await self._flush_outbox(timeout_s=2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await task
        with contextlib.suppress(RedisError):
            await self._redis.delete(_instance_key(self.instance_id))
        with contextlib.suppress(RedisError):
            if self._pubsub is not None:
                await self._pubsub.aclose()
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    # -- Fanout --------------------------------------------------------------------------

    async def open(self, doc_id: str, deliver: Callable[[RemoteEvent], None]) -> None:
        self._deliver[doc_id] = deliver
        start_ms = max(0, int(time.time() * 1000) - self._replay_ms)
        self._last_id[doc_id] = b"%d-0" % start_ms
        with contextlib.suppress(RedisError):
            await self._pubsub.subscribe(_channel(doc_id))

    async def close(self, doc_id: str) -> None:
        self._deliver.pop(doc_id, None)
        self._last_id.pop(doc_id, None)
        with contextlib.suppress(RedisError):
            await self._pubsub.unsubscribe(_channel(doc_id))

    def publish(self, doc_id: str, event: RemoteEvent) -> None:
        self._outbox.append((doc_id, event))
        self._outbox_empty.clear()
        self._outbox_ready.set()

    # -- writing -------------------------------------------------------------------------

    async def _write(self) -> None:
        delay = 0.1
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = list(self._outbox)
                try:
                    await self._send(batch)
                except RedisError as exc:
                    self._lost_connection(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.1
                for _ in batch:
                    self._outbox.popleft()
            self._outbox_empty.set()

    async def _send(self, batch: list[tuple[str, RemoteEvent]]) -> None:
        minid = b"%d-0" % max(0, int(time.time() * 1000) - self._retention_ms)
        pipe = self._redis.pipeline(transaction=False)
        for doc_id, event in batch:
            if isinstance(event, RemoteAwareness):
                origin = event.origin.encode()
                pipe.publish(_channel(doc_id), origin + event.payload)
            else:
                key = _stream(doc_id)
                entry = encode_event(event, self.instance_id)
                pipe.xadd(key, entry, minid=minid, approximate=True)
                pipe.pexpire(key, self._retention_ms * 2)
        await pipe.execute()

    async def _flush_outbox(self, timeout_s: float) -> None:
        if self._outbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_empty.wait(), timeout_s)

    # -- reading -------------------------------------------------------------------------

    async def _read_streams(self) -> None:
        delay = 0.1
        while True:
            if not self._deliver:
                await asyncio.sleep(self._block_ms / 1000)
                continue
            streams = {_stream(d): self._last_id[d] for d in list(self._deliver)}
            try:
                replies = await self._redis.xread(streams, block=self._block_ms, count=1000)
            except RedisError as exc:
                self._lost_connection(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            if not self.connected:
                self._reconnected()
            for key, entries in replies or ():
                self._dispatch(key.decode(), entries)

    def _dispatch(self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        doc_id = key.rsplit(":", 1)[1]
        deliver = self._deliver.get(doc_id)
        if deliver is None:
            return
        for entry_id, fields in entries:
            self._last_id[doc_id] = entry_id
            event = decode_event(fields)
            if event is None:
                continue
            origin = fields.get(b"o", b"").decode()
            if origin == self.instance_id:
                continue  # our own (access changes carry their sender as ``o`` too)
            if origin:
                self._origins.setdefault(origin, 0)
            deliver(event)

    async def _read_presence(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except RedisError as exc:
                self._lost_connection(exc)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            doc_id = message["channel"].decode().rsplit(":", 1)[1]
            data: bytes = message["data"]
            origin, payload = data[:_ORIGIN_LEN].decode(), data[_ORIGIN_LEN:]
            deliver = self._deliver.get(doc_id)
            if deliver is not None and origin != self.instance_id:
                self._origins.setdefault(origin, 0)
                deliver(RemoteAwareness(origin, payload))

    # -- liveness ------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        key = _instance_key(self.instance_id)
        ttl_ms = int(self._heartbeat_s * 3 * 1000)
        while True:
            try:
                await self._redis.set(key, b"1", px=ttl_ms)
                await self._check_origins()
            except RedisError as exc:
                self._lost_connection(exc)
            await asyncio.sleep(self._heartbeat_s)

    async def _check_origins(self) -> None:
        origins = list(self._origins)
        if not origins:
            return
        pipe = self._redis.pipeline(transaction=False)
        for origin in origins:
            pipe.exists(_instance_key(origin))
        alive = await pipe.execute()
        for origin, exists in zip(origins, alive, strict=True):
            if exists:
                self._origins[origin] = 0
                continue
            # Two misses in a row, so that a Redis restart (which drops every key at once)
            # does not look like every instance dying.
            self._origins[origin] += 1
            if self._origins[origin] >= 2:
                del self._origins[origin]
                for deliver in list(self._deliver.values()):
                    deliver(RemoteGone(origin))

    def _lost_connection(self, exc: Exception) -> None:
        if self.connected:
            log.warning("redis unreachable; serving local clients only: %s", exc)
        self.connected = False

    def _reconnected(self) -> None:
        log.warning("redis reachable again; reloading open rooms from the store")
        self.connected = True
        self._outbox_ready.set()
        for deliver in list(self._deliver.values()):
            deliver(FanoutGap("redis connection restored"))
        task = asyncio.create_task(self._resubscribe())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _resubscribe(self) -> None:
        with contextlib.suppress(RedisError):
            channels = [_channel(d) for d in self._deliver]
            if channels:
                await self._pubsub.subscribe(*channels)

"""A small y-websocket client on pycrdt, for tests and benchmarks.

It speaks the same protocol as the official JS client: it sends its step 1 on connect, answers
the server's step 1 with a step 2, applies step 2 and updates, and records awareness and auth
messages so tests can assert on them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import websockets
from pycrdt import Doc

from crdt.protocol import (
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_awareness,
    decode_message,
    encode_awareness_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)


class YClient:
    def __init__(self, url: str, doc: Doc | None = None, *, headers: dict[str, str] | None = None):
        self.url = url
        self.doc = doc if doc is not None else Doc()
        self.headers = headers
        self.ws: Any = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.denied: list[str] = []
        self.awareness: dict[int, str] = {}
        self.updates_received = 0
        self.on_update: Callable[[bytes], None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.saved: list[bytes] = []  # durable state vectors, newest last

    async def connect(self, *, handshake: bool = True) -> YClient:
        self.ws = await websockets.connect(
            self.url, max_size=None, additional_headers=self.headers, open_timeout=10
        )
        self._reader = asyncio.create_task(self._read())
        if handshake:
            await self.send(encode_sync_step1(self.doc.get_state()))
        return self

    async def send(self, frame: bytes) -> None:
        await self.ws.send(frame)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason or ""
            self.closed.set()

    def _handle(self, frame: bytes) -> None:
        message = decode_message(frame)
        if isinstance(message, SyncStep1):
            reply = encode_sync_step2(self.doc.get_update(message.state_vector))
            task = asyncio.ensure_future(self.send(reply))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(message, SyncStep2 | SyncUpdate):
            self.doc.apply_update(message.update)
            self.updates_received += 1
            if self.on_update is not None:
                self.on_update(message.update)
            if isinstance(message, SyncStep2):
                self.synced.set()
        elif isinstance(message, AwarenessUpdate):
            for entry in decode_awareness(message.payload, state_bytes_max=1 << 20):
                if entry.removed:
                    self.awareness.pop(entry.client_id, None)
                else:
                    self.awareness[entry.client_id] = entry.state
        elif isinstance(message, AuthDenied):
            self.denied.append(message.reason)
        elif isinstance(message, Saved):
            self.saved.append(message.state_vector)
        else:
            assert isinstance(message, QueryAwareness)

    async def edit(self, change: Callable[[Doc], object]) -> bytes:
        """Change the local doc and send the resulting update."""
        before = self.doc.get_state()
        with self.doc.transaction():
            change(self.doc)
        update = self.doc.get_update(before)
        await self.send(encode_update(update))
        return update

    async def set_awareness(self, client_id: int, clock: int, state: str) -> None:
        await self.send(encode_awareness_message([AwarenessEntry(client_id, clock, state)]))

    async def wait_synced(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def wait_closed(self, timeout: float = 10) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10, step: float = 0.01
) -> None:
    """Wait until ``predicate()`` holds; fails the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """client id -> clock, from an encoded Yjs state vector."""
    from pycrdt import Decoder

    decoder = Decoder(state_vector)
    count = decoder.read_var_uint()
    return {decoder.read_var_uint(): decoder.read_var_uint() for _ in range(count)}


def covers(state_vector: bytes, required: bytes) -> bool:
    have = decode_state_vector(state_vector)
    return all(have.get(c, 0) >= clock for c, clock in decode_state_vector(required).items())

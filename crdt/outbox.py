"""A per-connection send queue bounded in bytes.

Broadcast must never wait for the slowest client (``websockets`` docs, topics/broadcast):
frames are queued here without awaiting, and a writer task drains the queue to the socket.
A connection whose queue would exceed its byte budget is closed instead of buffered without
limit; the client resyncs on reconnect, so nothing is lost. One frame is always admitted into
an empty queue, so a full state larger than the budget can still reach a joiner.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    def __init__(self, bytes_max: int) -> None:
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self._bytes_max = bytes_max
        self._ready = asyncio.Event()
        self.closed = False

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, frame: bytes) -> bool:
        """Queue ``frame``; False (and nothing queued) if it would overflow the budget."""
        if self.closed:
            return True  # The connection is going away; dropping is harmless.
        if self._frames and self._bytes + len(frame) > self._bytes_max:
            return False
        self._frames.append(frame)
        self._bytes += len(frame)
        self._ready.set()
        return True

    async def get(self) -> bytes | None:
        """The next frame, waiting if none is queued; None once closed."""
        while not self._frames and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame

    def close(self) -> None:
        """Stop the writer; frames still queued are dropped (the client resyncs)."""
        self.closed = True
        self._frames.clear()
        self._bytes = 0
        self._ready.set()

"""What every Python benchmark client shares: a y-websocket connection opened as a browser
would (permessage-deflate offered, sync step 1 on open), one reader task that hands each
binary frame to the client and sends its reply, errors recorded rather than raised, and a
bounded close. Clients differ only in what they do with a frame (``on_frame``) and in the
step 1 they open with (``sync_step1``): ``bench.loadgen.BenchClient`` looks for edit markers,
``bench.persistence_bench.Writer`` watches ``saved`` messages.

Also the REST call every benchmark makes to get a room: ``create_project``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

# Sync step 1 with the empty state vector, and the empty step 2 that answers the server's step 1
# for a client that has nothing the server lacks.
EMPTY_SYNC_STEP1 = b"\x00\x00\x01\x00"
EMPTY_SYNC_STEP2 = b"\x00\x01\x02\x00\x00"


class ErrorLog(Protocol):
    def error(self, message: str) -> None: ...


class YWebSocketClient:
    """One benchmark connection. Subclasses override ``on_frame`` (and ``sync_step1``)."""

    # How the client names itself in errors, and how it reports a close by the server.
    label = "client"
    closed_text = "closed by server"

    def __init__(
        self,
        index: int,
        url: str,
        errors: ErrorLog,
        *,
        deflate: bool = True,
        open_timeout_s: float = 30.0,
    ) -> None:
        self.index = index
        self.url = url
        self.errors = errors
        self.deflate = deflate
        self.open_timeout_s = open_timeout_s
        self.ws: ClientConnection | None = None
        self.synced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def sync_step1(self) -> bytes:
        return EMPTY_SYNC_STEP1

    def on_frame(self, frame: bytes) -> bytes | None:
        """Handle one binary frame; return a frame to send back, if any."""
        raise NotImplementedError

    async def connect(self, timeout_s: float | None = None) -> None:
        self.ws = await websockets.connect(
            self.url,
            max_size=None,
            max_queue=1024,
            open_timeout=timeout_s if timeout_s is not None else self.open_timeout_s,
            ping_interval=None,
            close_timeout=2,
            # Browsers offer permessage-deflate; the server decides whether to use it.
            compression="deflate" if self.deflate else None,
        )
        self._reader = asyncio.create_task(self._read())
        await self.ws.send(self.sync_step1())

    @property
    def extensions(self) -> str:
        if self.ws is None:
            return ""
        return ",".join(type(e).__name__ for e in self.ws.protocol.extensions) or "none"

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        try:
            async for frame in ws:
                if not isinstance(frame, bytes):
                    continue
                reply = self.on_frame(frame)
                if reply is not None:
                    await ws.send(reply)
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code != 1000:
                self.errors.error(
                    f"{self.label} {self.index}: {self.closed_text} {exc.rcvd.code} "
                    f"{exc.rcvd.reason}"
                )
        except Exception as exc:
            self.errors.error(f"{self.label} {self.index}: {type(exc).__name__}: {exc}")

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def create_project(port: int, token: str, title: str = "Bench") -> str:
    """A new project on the server at ``port``, owned by the token's user; returns its id."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
    ) as http:
        response = await http.post("/api/projects", json={"title": title})
        response.raise_for_status()
        project_id: str = response.json()["id"]
        return project_id

"""A websocket fan-out with no CRDT and no room logic: the floor for the sync benchmark.

Every binary frame a connection sends on ``/{room}`` is queued, unchanged, to every other
connection of that room. A client's sync step 1 is answered with an empty sync step 2 instead
of being forwarded, so y-websocket clients consider themselves synced (forwarding it would
also make a join storm quadratic, which no real server does).

It runs on the same stack as ``flowai serve`` (Starlette on uvicorn with the
``websockets-sansio`` protocol, the same backlog and frame limit) and fans out the same way
(a queue and a writer task per connection, so one slow socket never stalls the sender), so
comparing the two isolates the cost of the document and room work.

    python -m bench.bare_relay --host 127.0.0.1 --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SYNC_STEP1_PREFIX = b"\x00\x00"
EMPTY_SYNC_STEP2 = b"\x00\x01\x02\x00\x00"
MESSAGE_BYTES_MAX = 16 * 1024 * 1024

Outbox = asyncio.Queue[bytes | None]
_rooms: dict[str, set[Outbox]] = {}


async def _write(ws: WebSocket, outbox: Outbox) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while (frame := await outbox.get()) is not None:
            await ws.send_bytes(frame)


async def relay(ws: WebSocket) -> None:
    await ws.accept()
    name = ws.path_params["room"]
    room = _rooms.setdefault(name, set())
    outbox: Outbox = asyncio.Queue()
    writer = asyncio.create_task(_write(ws, outbox))
    room.add(outbox)
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("bytes")
            if not frame:
                continue
            if frame.startswith(SYNC_STEP1_PREFIX):
                outbox.put_nowait(EMPTY_SYNC_STEP2)
                continue
            for other in room:
                if other is not outbox:
                    other.put_nowait(frame)
    finally:
        room.discard(outbox)
        if not room:
            _rooms.pop(name, None)
        outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(writer, timeout=5)


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/healthz", healthz), WebSocketRoute("/{room:path}", relay)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.bare_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=MESSAGE_BYTES_MAX,
        ws_per_message_deflate=False,  # as flowai serve: compression off
        backlog=2048,
        log_config=None,
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()

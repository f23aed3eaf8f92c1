"""A websocket fan-out with no CRDT, no auth and no room logic: the floor for the sync benchmark.

Every binary frame a connection sends on ``/{room}`` is written, unchanged, to every other
connection of that room. A client's sync step 1 is answered with an empty sync step 2 instead
of being forwarded, so y-websocket clients consider themselves synced (forwarding it would
also make a join storm quadratic, which no real server does).

It runs on the same stack as ``flowai serve``: uvicorn for HTTP, with every websocket upgrade
handed to a protocol class on the transport (``server.ws``), a connection that opens with a join
(of ``/bench-...``, the sync benchmark's rooms) routed to it directly (``server.ws.router``),
websockets' sans-I/O parser, frames written with ``transport.write``, the same backlog and frame
limit. Comparing the two isolates
the cost of the token check, the membership lookup, the document and the room work.

    python -m bench.bare_relay --host 127.0.0.1 --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.ws.router import FirstRequestRouter

SYNC_STEP1_PREFIX = b"\x00\x00"
EMPTY_SYNC_STEP2 = b"\x00\x01\x02\x00\x00"
MESSAGE_BYTES_MAX = 16 * 1024 * 1024

_rooms: dict[str, set[RelayConnection]] = {}


class RelayConnection(asyncio.Protocol):
    __slots__ = ("room", "transport", "ws")

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        self.ws = ServerProtocol()
        self.transport: asyncio.Transport | None = None
        self.room: set[RelayConnection] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.room is not None:
            self.room.discard(self)

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(Frame(Opcode.BINARY, frame).serialize(mask=False))

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                response = ws.accept(event)
                assert self.transport is not None
                self.transport.write(response.serialize())
                self.ws = ServerProtocol(state=State.OPEN, max_size=MESSAGE_BYTES_MAX)
                self.room = _rooms.setdefault(event.path, set())
                self.room.add(self)
            elif event.opcode is Opcode.BINARY and self.room is not None:
                frame = bytes(event.data)
                if frame.startswith(SYNC_STEP1_PREFIX):
                    self.send(EMPTY_SYNC_STEP2)
                    continue
                for other in tuple(self.room):
                    if other is not self:
                        other.send(frame)
        transport = self.transport
        for chunk in self.ws.data_to_send():  # pongs, the close echo, then the end
            if transport is None:
                break
            if chunk:
                transport.write(chunk)
            else:
                transport.close()


class RelayRouter(FirstRequestRouter):
    """As ``flowai serve`` does, a connection that opens with a join (the sync benchmark's
    rooms are ``/bench-...``) skips uvicorn's HTTP protocol."""

    websocket_request = b"GET /bench-"
    websocket_protocol = RelayConnection


async def healthz(_request: HttpRequest) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/healthz", healthz)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.bare_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http=RelayRouter,
        ws=RelayConnection,
        backlog=2048,
        log_config=None,
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()

"""Give a connection whose first request is a websocket join straight to its protocol.

uvicorn runs every connection through its HTTP protocol first: it builds a parser, flow
control and address lookups for the connection, parses the request, and on an upgrade
re-serialises it for the websocket protocol class (which reads it again). In a join storm that
was about a tenth of the server's CPU per join, spent before the join is even looked at.

This protocol stands in for uvicorn's HTTP protocol (uvicorn's ``http`` setting takes a class).
It reads the first bytes of a connection: a request line starting ``GET /ws/`` hands the
connection, bytes read so far included, to the websocket protocol, which parses the request
once and answers it (a ``GET /ws/...`` that is not a valid upgrade gets its HTTP error there).
Anything else goes to uvicorn's own HTTP protocol, unchanged, as it would have without this;
a websocket upgrade that arrives later on a kept-alive HTTP connection still reaches the
websocket protocol through uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

from uvicorn.protocols.http.auto import AutoHTTPProtocol

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState


class FirstRequestRouter(asyncio.Protocol):
    """Routes a connection by the start of its first request line (see the module)."""

    # Set by subclasses: the request line start that marks a websocket join, and its protocol
    # (constructed as uvicorn constructs its ``ws`` protocol class).
    websocket_request: ClassVar[bytes]
    websocket_protocol: ClassVar[type[asyncio.Protocol]]

    __slots__ = ("_app_state", "_config", "_head", "_loop", "_server_state", "_transport")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop
        self._transport: asyncio.Transport | None = None
        self._head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        # Known to uvicorn, so that a graceful shutdown closes it (``shutdown``).
        self._server_state.connections.add(self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        head = self._head + data if self._head else data
        wanted = self.websocket_request
        if len(head) < len(wanted) and wanted.startswith(head):
            self._head = head  # too little to tell yet
            return
        transport = self._transport
        assert transport is not None
        self._server_state.connections.discard(self)
        protocol: asyncio.Protocol
        if head.startswith(wanted):
            protocol = self.websocket_protocol(  # type: ignore[call-arg]
                config=self._config, server_state=self._server_state, app_state=self._app_state
            )
        else:
            protocol = AutoHTTPProtocol(  # type: ignore[call-arg]
                config=self._config,
                server_state=self._server_state,
                app_state=self._app_state,
                _loop=self._loop,
            )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(head)

    def eof_received(self) -> bool | None:
        return None  # closed before a whole request line: close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn is stopping: nothing was asked on this connection yet."""
        if self._transport is not None:
            self._transport.close()

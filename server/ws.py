"""The websocket endpoint: authenticate, then move bytes between the socket and the room.

All protocol work happens in ``crdt.room`` (pure) and ``crdt.rooms`` (registry); this module
only accepts, reads frames, drains the connection's outbox to the socket and closes with the
right code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from crdt.errors import ProtocolError
from crdt.outbox import Outbox
from crdt.ports import Disconnect
from server import log_context
from server.auth import AuthError
from server.close_codes import CloseCode
from server.rate_limit import TokenBucket

if TYPE_CHECKING:
    from crdt.rooms import LiveRoom
    from server.metrics import Metrics
    from server.services import Services

log = logging.getLogger(__name__)

# How long a connection the server closed may take to let its close frame out.
_CLOSE_GRACE_S = 10.0

_CLOSE_CODES = {
    Disconnect.SLOW_CONSUMER: (CloseCode.TRY_AGAIN_LATER, "send queue overflow; reconnect"),
    Disconnect.MALFORMED: (CloseCode.MALFORMED, "malformed message"),
    Disconnect.REVOKED: (CloseCode.NOT_A_MEMBER, "access to this project was removed"),
    Disconnect.SHUTDOWN: (CloseCode.SERVER_RESTARTING, "server restarting"),
}


class Connection:
    """A ``crdt.ports.Peer`` over a Starlette websocket."""

    def __init__(
        self, ws: WebSocket, user_id: str, send_queue_bytes_max: int, metrics: Metrics
    ) -> None:
        self.ws = ws
        self.metrics = metrics
        self._user_id = user_id
        self.outbox = Outbox(send_queue_bytes_max)
        self.close_code: tuple[int, str] = (CloseCode.NORMAL, "")
        # For the idle check: when a frame last arrived, and whether a send is in progress
        # (a large frame to a slow client is progress, not idleness).
        self.last_activity_s = asyncio.get_running_loop().time()
        self.sending = False
        # Set once the server decides to close: later frames are not handled. (The writer
        # failing because the client is leaving is not that: frames the client sent before
        # its close are still applied.)
        self.closing = False
        # Called once when the server closes it: leave the room at once, and release the
        # endpoint if the close frame cannot get out (a client that stopped reading).
        self.on_server_close: Callable[[], None] | None = None

    @property
    def user_id(self) -> str:
        return self._user_id

    def send(self, frame: bytes) -> bool:
        return self.outbox.put(frame)

    def close(self, reason: Disconnect) -> None:
        self.close_with(*_CLOSE_CODES[reason])

    def close_with(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        if not self.outbox.closed:
            self.close_code = (code, reason)
            self.outbox.close()
        if self.on_server_close is not None:
            self.on_server_close()

    async def write_loop(self) -> None:
        """Drain the outbox to the socket; once it is closed, send the close frame."""
        try:
            messages_out, bytes_out = self.metrics.messages_out, self.metrics.bytes_out
            while (frame := await self.outbox.get()) is not None:
                self.sending = True
                await self.ws.send_bytes(frame)
                self.sending = False
                messages_out.inc()
                bytes_out.inc(len(frame))
            code, reason = self.close_code
            self.metrics.closes.labels(str(code)).inc()
            await self.ws.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client went away first; the read loop sees the disconnect.
            self.outbox.close()


class IdleConnections:
    """Closes connections that sent nothing for ``idle_timeout_s`` while nothing was being
    sent to them.

    uvicorn's ping timeout is off (see ``Settings.ws_ping_timeout_s``): a pong queues behind
    whatever the server is still sending, so it would cut off a client that is receiving a
    large document over a slow link. Pings still go out to keep intermediaries open; dead
    peers are found here instead, by inbound silence (y-websocket clients renew their presence
    every 15 s) while no send is in progress.
    """

    def __init__(self, idle_timeout_s: float) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.connections: set[Connection] = set()
        self.per_user: dict[str, int] = {}

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.per_user[conn.user_id] = self.per_user.get(conn.user_id, 0) + 1

    def discard(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_user[conn.user_id] - 1
            if left:
                self.per_user[conn.user_id] = left
            else:
                del self.per_user[conn.user_id]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.05, self.idle_timeout_s / 4))
            deadline = loop.time() - self.idle_timeout_s
            for conn in list(self.connections):
                if not conn.sending and conn.last_activity_s < deadline:
                    conn.close_with(CloseCode.IDLE_TIMEOUT, "idle: nothing received in time")


def _token(ws: WebSocket) -> str | None:
    token = ws.query_params.get("token")
    if token:
        return token
    header = ws.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


async def _refuse(ws: WebSocket, code: CloseCode, reason: str) -> None:
    # Accept first: a close before accept becomes an HTTP 403 and the client never sees
    # the code.
    await ws.accept()
    await ws.close(code, reason)


async def websocket_endpoint(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    try:
        identity = await services.verifier.verify(_token(ws))
    except AuthError as exc:
        await _refuse(ws, CloseCode.NOT_AUTHENTICATED, exc.code)
        return
    try:
        project_id = uuid.UUID(ws.path_params["project_id"])
    except ValueError:
        await _refuse(ws, CloseCode.NO_SUCH_PROJECT, "no such project")
        return
    try:
        exists, role = await services.directory.access(project_id, identity.user_id)
    except Exception:  # the database is unreachable: the client should retry
        log.exception("membership check failed")
        await _refuse(ws, CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
        return
    if not exists:
        await _refuse(ws, CloseCode.NO_SUCH_PROJECT, "no such project")
        return
    if role is None:
        await _refuse(ws, CloseCode.NOT_A_MEMBER, "not a member of this project")
        return
    if services.idle.per_user.get(identity.user_id, 0) >= services.settings.user_connections_max:
        await _refuse(ws, CloseCode.RATE_LIMITED, "too many open connections for this user")
        return
    log_context.project_id.set(str(project_id))
    await ws.accept()
    conn = Connection(
        ws, identity.user_id, services.settings.send_queue_bytes_max, services.metrics
    )
    writer = asyncio.create_task(conn.write_loop())
    wants_saved = ws.query_params.get("saved", "") in ("1", "true")
    try:
        live = await services.rooms.join(
            str(project_id), conn, can_edit=role.can_edit, wants_saved=wants_saved
        )
    except Exception:  # the room could not be loaded (database unreachable)
        log.exception("loading the room failed", extra={"project_id": str(project_id)})
        conn.close_with(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
        await writer
        return
    services.idle.add(conn)
    endpoint = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def server_closed() -> None:
        services.rooms.leave(live, conn)
        services.idle.discard(conn)
        # The close frame queues behind whatever the client has not read; if it has not left
        # within the grace period, stop waiting for it (the socket is then closed by uvicorn).
        if endpoint is not None:
            loop.call_later(_CLOSE_GRACE_S, endpoint.cancel)

    conn.on_server_close = server_closed
    try:
        await _read_loop(services, live, conn)
    except asyncio.CancelledError:
        if not conn.closing:
            raise
    finally:
        services.idle.discard(conn)
        services.rooms.leave(live, conn)
        conn.outbox.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(writer, timeout=5)


async def _read_loop(services: Services, live: LiveRoom, conn: Connection) -> None:
    settings = services.settings
    limit = settings.message_bytes_max
    receive = conn.ws.receive
    clock = asyncio.get_running_loop().time
    metrics = services.metrics
    timer = time.perf_counter
    messages = TokenBucket.full(settings.conn_messages_per_s, settings.conn_messages_burst, clock())
    volume = TokenBucket.full(settings.conn_bytes_per_s, settings.conn_bytes_burst, clock())
    while not conn.closing:
        message = await receive()
        if message["type"] == "websocket.disconnect" or conn.closing:
            return
        conn.last_activity_s = clock()
        frame = message.get("bytes")
        if frame is None:
            conn.close_with(CloseCode.MALFORMED, "text frames are not part of the protocol")
            return
        if len(frame) > limit:
            conn.close_with(CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        now = clock()
        if not (messages.take(1, now) and volume.take(len(frame), now)):
            conn.close_with(CloseCode.RATE_LIMITED, "too many messages; slow down")
            return
        metrics.messages_in.inc()
        metrics.bytes_in.inc(len(frame))
        started = timer()
        try:
            services.rooms.receive(live, conn, frame)
            metrics.apply_seconds.observe(timer() - started)
        except ProtocolError as exc:
            log.info("malformed message: %s", exc, extra={"project_id": live.doc_id})
            conn.close_with(CloseCode.MALFORMED, str(exc)[:120])
            return

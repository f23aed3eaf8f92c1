"""The websocket endpoint ``/ws/{project_id}``, served as a uvicorn websocket protocol.

``flowai serve`` hands every websocket upgrade to ``WebSocketConnection`` (uvicorn's ``ws``
setting takes a protocol class) instead of running it as an ASGI application, and a connection
that opens with a join reaches it without passing through uvicorn's HTTP protocol at all
(``JoinRouter``, uvicorn's ``http`` setting; see ``server.ws.router``). Through ASGI a
connection costs a task, a receive queue, a scope holding copies of every request header and a
writer task; that measured 29 KB per idle connection, and every broadcast woke one task per
recipient. Here a connection is one object on its transport: the upgrade request is read with
httptools and checked by websockets' sans-I/O ``ServerProtocol`` (``server.ws.handshake``),
which then parses the frames; each message is handled synchronously
in ``data_received``, and frames go out with ``transport.write``. The transport's write buffer
is the bounded send queue. A join of a live room is admitted in the handshake callback too.
A join of a cold room waits for the room to load (one read, one task per room, not per
connection) and is admitted in the step that opens it. Only a join that has to wait for
something else (a signing key to fetch, a membership the room's list does not answer) runs in
a task of its own, which ends once the client has joined.

All protocol work happens in ``crdt.room`` (pure) and ``crdt.live.registry`` (registry); this module
authenticates, moves bytes between the transport and the room and closes with the right code.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote

from websockets.exceptions import InvalidState
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from crdt.errors import ProtocolError
from crdt.ports import Disconnect
from server import log_context
from server.auth import AuthError
from server.close_codes import CloseCode
from server.ws.backpressure import send_admitted
from server.ws.handshake import UpgradeRequestReader, accept
from server.ws.rate_limit import TokenBucket
from server.ws.router import FirstRequestRouter

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from crdt.live.registry import LiveRoom
    from server.composition.services import Services

log = logging.getLogger(__name__)

# How long a connection the server closed may take to let its close frame out and answer it;
# after that the socket is dropped (a client that stopped reading never drains its buffer).
_CLOSE_GRACE_S = 10.0
_PATH_PREFIX = "/ws/"
# What a client may send before it is admitted (a y-websocket client sends its sync step 1
# and its presence; its offline edits follow the server's step 1, which comes after).
_EARLY_MESSAGES_MAX = 64
_EARLY_BYTES_MAX = 1024 * 1024

_EXTENSIONS = [
    ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )
]

_CLOSE_CODES = {
    Disconnect.SLOW_CONSUMER: (CloseCode.TRY_AGAIN_LATER, "send queue overflow; reconnect"),
    Disconnect.MALFORMED: (CloseCode.MALFORMED, "malformed message"),
    Disconnect.REVOKED: (CloseCode.NOT_A_MEMBER, "access to this project was removed"),
    Disconnect.SHUTDOWN: (CloseCode.SERVER_RESTARTING, "server restarting"),
    Disconnect.PROJECT_DELETED: (CloseCode.NO_SUCH_PROJECT, "project deleted"),
}


def _services(config: Config) -> Services:
    # uvicorn wraps the application (proxy headers, logging); the FastAPI app is innermost.
    app: Any = config.loaded_app
    while not hasattr(app, "state"):
        app = app.app
    services: Services = app.state.services
    return services


class WebSocketConnection(asyncio.Protocol):
    """One websocket client: a ``crdt.ports.Peer`` straight on an asyncio transport.

    uvicorn creates it when an HTTP request asks for an upgrade, then feeds it the request.
    """

    __slots__ = (
        "_close_timer",
        "_context",
        "_corked",
        "_early",
        "_fragments",
        "_loop",
        "_messages",
        "_raw_frames",
        "_server_state",
        "_services",
        "_upgrade",
        "_user_id",
        "_volume",
        "_ws",
        "accepted",
        "closing",
        "last_activity_s",
        "last_ping_s",
        "live",
        "lost",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self._services = _services(config)
        self._server_state = server_state
        self._loop = _loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        settings = self._services.settings
        self._upgrade: UpgradeRequestReader | None = UpgradeRequestReader()
        # Starts open: the request is read by ``_upgrade``; websockets checks it, answers it
        # and then parses frames, enforcing the message size limit (1009), fragments included.
        self._ws = ServerProtocol(
            state=State.OPEN,
            extensions=_EXTENSIONS if settings.ws_per_message_deflate else None,
            max_size=settings.message_bytes_max,
        )
        self._raw_frames = True
        # The 101 and a joiner's first frames, while they are gathered (None once written).
        self._corked: list[bytes] | None = None
        self._context: contextvars.Context | None = None
        self._user_id = ""
        self.live: LiveRoom | None = None
        # Messages that arrive while the opening task runs, handled once the client joined.
        self._early: list[bytes] | None = []
        self._fragments: list[bytes] = []
        now = self._loop.time()
        self._messages = TokenBucket.full(
            settings.conn_messages_per_s, settings.conn_messages_burst, now
        )
        self._volume = TokenBucket.full(settings.conn_bytes_per_s, settings.conn_bytes_burst, now)
        self._close_timer: asyncio.TimerHandle | None = None
        # For the idle check: when a frame last arrived (and when a ping last went out).
        self.last_activity_s = now
        self.last_ping_s = now
        # Set once the server decides to close: later messages are not handled. Messages the
        # client sent before its own close frame are all handled (they arrive first).
        self.closing = False
        self.lost = False
        self.accepted = False

    # -- crdt.ports.Peer ------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return self._user_id

    def send(self, frame: bytes) -> bool:
        transport = self.transport
        if self.closing or transport is None:
            return True  # The connection is going away; dropping is harmless.
        budget = self._services.settings.send_queue_bytes_max
        if not send_admitted(transport.get_write_buffer_size(), len(frame), budget):
            return False
        if self._corked is not None:
            self._corked.append(_wire(frame))
        elif self._raw_frames:
            transport.write(_wire(frame))
        else:  # permessage-deflate: each connection has its own compressor state
            self._ws.send_binary(frame)
            self._flush()
        wire = self._services.metrics.wire
        wire.messages_out += 1
        wire.bytes_out += len(frame)
        return True

    def close(self, reason: Disconnect) -> None:
        self.close_with(*_CLOSE_CODES[reason])

    # -- closing ---------------------------------------------------------------------------

    def close_with(self, code: int, reason: str) -> None:
        """Leave the room at once, then send the close frame behind what is still queued."""
        if self.closing:
            return
        self.closing = True
        self._leave()
        self._services.metrics.closes.labels(str(code)).inc()
        if self.lost or self.transport is None:
            return
        self._uncork()
        try:
            self._ws.send_close(code, reason)
        except InvalidState:  # the client's close frame came first
            pass
        self._flush()
        # The close frame queues behind whatever the client has not read; if it has not
        # answered within the grace period, drop the socket.
        self._close_timer = self._loop.call_later(_CLOSE_GRACE_S, self.transport.abort)

    def _leave(self) -> None:
        services = self._services
        services.idle.discard(self)
        if self.live is not None:
            services.rooms.leave(self.live, self)

    def _flush(self) -> None:
        """Write what websockets queued (handshake, control frames); an empty chunk means
        the server side is done and closes the TCP connection."""
        transport = self.transport
        if transport is None:
            return
        for chunk in self._ws.data_to_send():
            if not chunk:
                self._uncork()
                transport.close()
            elif self._corked is not None:
                self._corked.append(chunk)
            else:
                transport.write(chunk)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A uvloop transport is not an asyncio.Transport subclass, but has the same methods.
        self.transport = cast(asyncio.Transport, transport)
        self._server_state.connections.add(self)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._upgrade is not None:
            self._upgrade.close()
            self._upgrade = None
        self._server_state.connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if not self.closing:
            self.closing = True
            self._leave()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def data_received(self, data: bytes) -> None:
        if self._context is not None:
            self._context.run(self._receive, data)
        else:
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        if self._upgrade is not None:
            self._read_upgrade(data)
            return
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        if ws.parser_exc is not None and not self.closing:
            # websockets failed the connection (too big: 1009, protocol error: 1002) and
            # queued the close frame.
            self.closing = True
            self._leave()
            code = ws.close_sent.code if ws.close_sent is not None else CloseCode.MALFORMED
            self._services.metrics.closes.labels(str(code)).inc()
        self._flush()

    def shutdown(self) -> None:
        """uvicorn is stopping: close 1012 behind everything already queued."""
        if self.accepted:
            self.close_with(CloseCode.SERVER_RESTARTING, "server restarting")
            # Do not wait for the client's answer: the socket closes once the close frame,
            # and everything queued before it, is written.
            if self.transport is not None:
                self.transport.close()
        elif self.transport is not None and not self.closing:
            self._reject(503, "server restarting")

    # -- handshake -------------------------------------------------------------------------

    def _read_upgrade(self, data: bytes) -> None:
        reader = self._upgrade
        assert reader is not None
        try:
            reader.feed(data)
        except ValueError as exc:
            self._upgrade = None
            self._reject(400, str(exc))
            return
        if reader.request is None:
            return  # more of the request head to come
        self._upgrade = None
        self._handshake(reader.request)
        if reader.rest and not self.closing:
            self._receive(reader.rest)

    def _handshake(self, request: Request) -> None:
        path, _, query = request.path.partition("?")
        project = unquote(path[len(_PATH_PREFIX) :]) if path.startswith(_PATH_PREFIX) else ""
        if not project or "/" in project:
            self._reject(404, "no websocket endpoint here; use /ws/{project_id}")
            return
        response = accept(self._ws, request)
        if isinstance(response, Response):  # not a valid upgrade request (400/426)
            self._reject(response)
            return
        params = parse_qs(query)
        token = _token(params, request.headers.get("Authorization", ""))
        wants_saved = params.get("saved", [""])[-1] in ("1", "true")
        # A join that waits for nothing (token checked without I/O, live room that knows its
        # members) is admitted here, and the greeting leaves in the same write as the 101.
        admitted = self._admit_now(token, project)
        if isinstance(admitted, tuple):
            self._accept(response, corked=True)
            self._join_now(*admitted, wants_saved)
            return
        # Otherwise open at once and admit afterwards: the client sends its sync step 1 while
        # the token, the membership and the room are checked, so the answer leaves with the
        # greeting instead of a round trip later. Nothing of the document is sent before the
        # client is admitted, and a refusal is a close code (which an HTTP status would hide).
        self._accept(response)
        if isinstance(admitted, _Refused):
            self.close_with(admitted.code, admitted.reason)
            return
        if isinstance(admitted, _Verified):
            # A cold room (or one being opened) admits this join when it opens, without a task.
            user_id = admitted.user_id
            opened = partial(self._room_opened, user_id, token, project, wants_saved)
            if self._services.rooms.wait_open(admitted.project_id, user_id, opened):
                return
        self._open_in_task(token, project, wants_saved)

    def _open_in_task(self, token: str | None, project: str, wants_saved: bool) -> None:
        task = self._loop.create_task(self._open_safely(token, project, wants_saved))
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _reject(self, status: int | Response, text: str = "") -> None:
        """Answer the upgrade request with an HTTP error and close."""
        self.closing = True
        response = status if isinstance(status, Response) else self._ws.reject(status, text)
        if self.transport is not None:
            self.transport.write(response.serialize())
            self.transport.close()

    def _accept(self, response: bytes, *, corked: bool = False) -> None:
        """Send the 101 (``corked``: with the greeting); what follows is gathered until the
        client joined (``_uncork``)."""
        self.accepted = True
        self._raw_frames = not self._ws.extensions
        if corked:
            self._corked = [response]
            return
        if self.transport is not None:
            self.transport.write(response)
        self._corked = []

    def _uncork(self) -> None:
        """Write the greeting of a joiner and the answers to what it sent meanwhile at once:
        one write instead of three or four in a join storm."""
        corked, self._corked = self._corked, None
        if corked and self.transport is not None:
            self.transport.write(b"".join(corked))

    async def _open_safely(self, token: str | None, project: str, saved: bool) -> None:
        try:
            await self._open(token, project, saved)
        except Exception:  # a bug: this connection goes, nothing else does
            log.exception("opening a websocket connection failed")
            self.close_with(CloseCode.INTERNAL_ERROR, "internal error")

    async def _open(self, token: str | None, project: str, saved: bool) -> None:
        log_context.request_id.set(uuid.uuid4().hex)
        services = self._services
        admitted = await self._admit(token, project)
        if self.closing:  # the client left, or the server is stopping
            return
        if isinstance(admitted, _Refused):
            self.close_with(admitted.code, admitted.reason)
            return
        project_id, can_edit = admitted
        log_context.project_id.set(project_id)
        services.idle.add(self)
        try:
            live = await services.rooms.join(project_id, self, can_edit=can_edit, wants_saved=saved)
        except Exception:  # the room could not be loaded (database unreachable)
            log.exception("loading the room failed", extra={"project_id": project_id})
            self.close_with(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
            return
        if self.closing:  # the client left, or was closed, while the room loaded
            services.rooms.leave(live, self)
            return
        self._joined(live)

    def _room_opened(
        self, user_id: str, token: str | None, project: str, saved: bool, live: LiveRoom | None
    ) -> None:
        """The room this join waited for opened (None: its load failed, or it was opened for
        someone who may not join): join it if its member list answers, else ``_open``."""
        if self.closing:  # the client left, or the server is stopping
            return
        try:
            known = live.member(user_id) if live is not None and not live.closing else None
            if live is None or known is None:
                self._open_in_task(token, project, saved)
                return
            admitted = self._admitted(user_id, *known)
            if isinstance(admitted, _Refused):
                self.close_with(admitted.code, admitted.reason)
                return
            self._join_now(live, admitted, saved)
        except Exception:  # a bug: this connection goes, the room and the other joins stay
            log.exception("admitting a websocket connection failed")
            self.close_with(CloseCode.INTERNAL_ERROR, "internal error")

    def _join_now(self, live: LiveRoom, can_edit: bool, saved: bool) -> None:
        """Join from the handshake: ``_open`` for an admission that waited for nothing."""
        contextvars.copy_context().run(self._join_live, live, can_edit, saved)

    def _join_live(self, live: LiveRoom, can_edit: bool, saved: bool) -> None:
        log_context.request_id.set(uuid.uuid4().hex)
        log_context.project_id.set(live.doc_id)
        services = self._services
        services.idle.add(self)
        services.rooms.join_live(live, self, can_edit=can_edit, wants_saved=saved)
        self._joined(live)

    def _joined(self, live: LiveRoom) -> None:
        self.live = live
        # From here on, messages are handled in data_received, under this log context.
        self._context = contextvars.copy_context()
        early, self._early = self._early, None
        for message in early or ():
            if self.closing:
                break
            self._handle(message)
        self._uncork()

    def _admit_now(
        self, token: str | None, project: str
    ) -> tuple[LiveRoom, bool] | _Refused | _Verified | None:
        """``_admit`` when nothing has to be waited for; when the room has to be waited for,
        who the token is for; None when the token may need I/O."""
        services = self._services
        try:
            identity = services.verifier.verify_now(token)
        except AuthError as exc:
            return _Refused(CloseCode.NOT_AUTHENTICATED, exc.code)
        if identity is None:
            return None  # its signing key may have to be fetched
        project_id = _project_id(project)
        if project_id is None:
            return _Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
        live = services.rooms.live_now(project_id)
        known = live.member(identity.user_id) if live is not None else None
        if live is None or known is None:
            return _Verified(identity.user_id, project_id)
        admitted = self._admitted(identity.user_id, *known)
        return admitted if isinstance(admitted, _Refused) else (live, admitted)

    async def _admit(self, token: str | None, project: str) -> tuple[str, bool] | _Refused:
        """The project id and whether the user may edit, or the close code and reason."""
        services = self._services
        try:
            identity = await services.verifier.verify(token)
        except AuthError as exc:
            return _Refused(CloseCode.NOT_AUTHENTICATED, exc.code)
        project_id = _project_id(project)
        if project_id is None:
            return _Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
        # A live room knows its members (kept current by every access change it hears), and
        # a cold one is opened for this join with one read that answers every other joiner.
        known = await services.rooms.member(project_id, identity.user_id)
        if known is None:
            try:
                exists, role = await services.directory.access(
                    uuid.UUID(project_id), identity.user_id
                )
            except Exception:  # the database is unreachable: the client should retry
                log.exception("membership check failed")
                return _Refused(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
            if not exists:
                return _Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
            known = (role is not None, role is not None and role.can_edit)
        admitted = self._admitted(identity.user_id, *known)
        return admitted if isinstance(admitted, _Refused) else (project_id, admitted)

    def _admitted(self, user_id: str, is_member: bool, can_edit: bool) -> bool | _Refused:
        """Whether the admitted user may edit, or why they are refused."""
        if not is_member:
            return _Refused(CloseCode.NOT_A_MEMBER, "not a member of this project")
        services = self._services
        if services.idle.per_user.get(user_id, 0) >= services.settings.user_connections_max:
            return _Refused(CloseCode.RATE_LIMITED, "too many open connections for this user")
        self._user_id = user_id
        return can_edit

    # -- frames ----------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self.last_activity_s = self._loop.time()
            if not frame.fin:
                self._fragments.append(bytes(frame.data))
                return
            if self._fragments:
                self._fragments.append(bytes(frame.data))
                message = b"".join(self._fragments)
                self._fragments = []
            else:
                message = bytes(frame.data)
            if self.closing or not self._take(message):
                return
            early = self._early
            if early is None:
                self._handle(message)
            elif len(early) < _EARLY_MESSAGES_MAX and (
                sum(map(len, early)) + len(message) <= _EARLY_BYTES_MAX
            ):
                early.append(message)
            else:
                self.close_with(CloseCode.RATE_LIMITED, "too much sent before admission")
        elif opcode is Opcode.TEXT:
            self.close_with(CloseCode.MALFORMED, "text frames are not part of the protocol")
        elif opcode is Opcode.CLOSE:
            # websockets queued the echo (or this answers ours) and the end of the connection.
            if not self.closing:
                self.closing = True
                self._leave()
        else:  # ping (websockets queued the pong) or pong
            self.last_activity_s = self._loop.time()

    def _take(self, message: bytes) -> bool:
        """Charge the message to the rate limits; close 4529 if they are exceeded."""
        now = self._loop.time()
        if self._messages.take(1, now) and self._volume.take(len(message), now):
            return True
        self.close_with(CloseCode.RATE_LIMITED, "too many messages; slow down")
        return False

    def _handle(self, message: bytes) -> None:
        services = self._services
        live = self.live
        assert live is not None
        wire = services.metrics.wire
        wire.messages_in += 1
        wire.bytes_in += len(message)
        started = time.perf_counter()
        try:
            services.rooms.receive(live, self, message)
        except ProtocolError as exc:
            log.info("malformed message: %s", exc, extra={"project_id": live.doc_id})
            self.close_with(CloseCode.MALFORMED, str(exc)[:120])
            return
        except Exception:  # a bug: this connection goes, the room and the others stay
            log.exception("handling a message failed", extra={"project_id": live.doc_id})
            self.close_with(CloseCode.INTERNAL_ERROR, "internal error")
            return
        wire.handled(time.perf_counter() - started)

    def ping(self) -> None:
        """Keep proxies and NATs from dropping a quiet connection."""
        if self.closing or self.transport is None:
            return
        self.last_ping_s = self._loop.time()
        try:
            self._ws.send_ping(b"")
        except InvalidState:
            return
        self._flush()

    @property
    def sending(self) -> bool:
        """Something is still waiting to go out (a slow link is busy, not idle)."""
        return self.transport is not None and self.transport.get_write_buffer_size() > 0


@dataclass(frozen=True, slots=True)
class _Refused:
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class _Verified:
    """A valid token for a well-formed project id, whose room is not live (or does not
    know its members)."""

    user_id: str
    project_id: str


# The last two frames encoded, most recent first (see ``_wire``).
_recent_wire: list[tuple[bytes, bytes]] = [(b"", b""), (b"", b"")]


def _wire(frame: bytes) -> bytes:
    """``frame`` as an unmasked binary websocket frame, encoded by websockets' stateless
    encoder (no pass through each connection's state machine). A broadcast sends the same
    bytes object to every peer in a row, and the joins of a storm alternate between the two
    frames the room shares with all of them (its step 1 and the full state as step 2), so the
    last two encodings are kept and reused."""
    recent = _recent_wire
    if frame is recent[0][0]:
        return recent[0][1]
    if frame is recent[1][0]:
        recent.reverse()
        return recent[0][1]
    wire = Frame(Opcode.BINARY, frame).serialize(mask=False)
    recent[1] = recent[0]
    recent[0] = (frame, wire)
    return wire


# A project id as the API hands it out; checked with one match instead of a UUID parse.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _project_id(project: str) -> str | None:
    """The project id in canonical form, or None if it is not a UUID."""
    if _CANONICAL_UUID.fullmatch(project):
        return project
    try:
        return str(uuid.UUID(project))
    except ValueError:
        return None


def _token(params: dict[str, list[str]], authorization: str) -> str | None:
    token = params.get("token", [""])[-1]
    if token:
        return token
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class IdleConnections:
    """Every open connection of this process: pings them and closes the idle ones.

    A connection that sent nothing for ``idle_timeout_s`` while nothing was being sent to it is
    closed (4508). Pongs are not timed (see ``Settings.ws_ping_interval_s``): a pong queues
    behind whatever the server is still sending, so it would cut off a client that is receiving
    a large document over a slow link. Pings go out every ``ping_interval_s`` to keep
    intermediaries open; dead peers are found by inbound silence instead (y-websocket clients
    renew their presence every 15 s). One sweep serves every connection, instead of a timer each.
    """

    def __init__(self, idle_timeout_s: float, ping_interval_s: float | None = None) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.ping_interval_s = ping_interval_s or None
        self.connections: set[WebSocketConnection] = set()
        self.per_user: dict[str, int] = {}

    def add(self, conn: WebSocketConnection) -> None:
        self.connections.add(conn)
        self.per_user[conn.user_id] = self.per_user.get(conn.user_id, 0) + 1

    def discard(self, conn: WebSocketConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            left = self.per_user[conn.user_id] - 1
            if left:
                self.per_user[conn.user_id] = left
            else:
                del self.per_user[conn.user_id]

    def sweep(self, now: float) -> None:
        idle_before = now - self.idle_timeout_s
        ping_before = now - self.ping_interval_s if self.ping_interval_s else None
        for conn in list(self.connections):
            if not conn.sending and conn.last_activity_s < idle_before:
                conn.close_with(CloseCode.IDLE_TIMEOUT, "idle: nothing received in time")
            elif ping_before is not None and conn.last_ping_s < ping_before:
                conn.ping()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.idle_timeout_s / 4
        if self.ping_interval_s:
            period = min(period, self.ping_interval_s / 4)
        while True:
            await asyncio.sleep(max(0.05, period))
            self.sweep(loop.time())


class JoinRouter(FirstRequestRouter):
    """uvicorn's ``http`` protocol for ``flowai serve``: a connection that opens with a join
    of ``/ws/{project_id}`` goes straight to ``WebSocketConnection`` (see ``server.ws.router``).
    """

    websocket_request = b"GET " + _PATH_PREFIX.encode()
    websocket_protocol = WebSocketConnection

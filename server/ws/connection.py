"""One websocket client of ``/ws/{project_id}``: a uvicorn websocket protocol on the transport.

``flowai serve`` hands every websocket upgrade to ``WebSocketConnection`` (uvicorn's ``ws``
setting takes a protocol class) instead of running it as an ASGI application, and a connection
that opens with a join reaches it without passing through uvicorn's HTTP protocol at all
(``JoinRouter``, see ``server.ws.router``). Through ASGI a connection cost a task, a receive
queue, a scope with copies of every header and a writer task (29 KB per idle connection), and
every broadcast woke one task per recipient. Here a connection is one object on its transport:
the upgrade is read and answered by ``server.ws.handshake``, websockets' sans-I/O
``ServerProtocol`` parses the frames, each message is handled synchronously in
``data_received``, and frames go out with ``transport.write``, whose buffer is the bounded send
queue. Frames sent to a connection within one turn of the event loop go out in one write at
the end of it (``_outbox``): under load a client receives several relayed updates per turn, and
one ``send`` system call per frame was the largest single cost of a busy server. A joiner's 101
and greeting wait for the end of the turn too, so that a join storm's writes leave together
(see ``_queue``). Admission is
``server.ws.admission``; the services come from the lifespan state.

Why this module is over 500 lines: it is one asyncio ``Protocol`` whose methods are the
connection's life (handshake, admitted, joined, throttled, closing, lost) and the per-frame hot
path. Splitting that class across modules would add a call or an attribute hop per frame, and
what could leave without one already did (``admission``, ``frames``, ``idle``, ``limits``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, cast

from websockets.exceptions import InvalidState
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

try:  # what websockets' parser uses: its C build, where there is one
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

from crdt.errors import ProtocolError
from crdt.ports import Disconnect
from server.auth import AuthError
from server.close_codes import CloseCode
from server.ws.admission import join_on_upgrade
from server.ws.frames import PATH_PREFIX, request_token, wire
from server.ws.handshake import HeadTooLarge, UpgradeHead, UpgradeRequestReader, read_join
from server.ws.limits import InboundLimit, send_admitted
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


# Where websockets' frame parser waits between frames (``_whole_binary_frames``).
_AT_REST = StreamReader.at_eof.__code__
_NO_FRAMES: tuple[Sequence[bytes], int] = ((), 0)


def _parser_at_rest(ws: ServerProtocol) -> bool:
    """Whether websockets' frame parser waits for the start of a frame: its generators are
    suspended where they look for more data or the end of the stream, not within a frame
    (whose first bytes they may have taken from the buffer already)."""
    waiting: Any = ws.parser
    while (inner := getattr(waiting, "gi_yieldfrom", None)) is not None:
        waiting = inner
    return getattr(waiting, "gi_code", None) is _AT_REST


def _whole_binary_frames(ws: ServerProtocol, data: bytes) -> tuple[Sequence[bytes], int]:
    """The messages of the whole binary frames (unfragmented, masked, under 64 KiB) that
    ``data`` starts with, arriving while websockets' parser waits for a new frame, and how
    many bytes they take; websockets parses the rest (a partial frame, any other frame).

    Nearly every frame of a client is one such (a join's sync step 1, an edit, presence), and
    websockets' parser takes it a few bytes at a time through generators: about 4 us a
    frame. For such a frame that parser does nothing but check what is checked here (opcode,
    no reserved bits, the mask, the size limit, no fragmented message in progress) and queue
    it; the test suite compares the two on valid and invalid frames. Under load a client's
    frames arrive several to a read (a joiner's step 1 and its answer to ours, a burst of
    edits), so every whole one at the start is taken, not only a read of exactly one."""
    size = len(data)
    if size < 6 or data[0] != 0x82:  # FIN, no reserved bits, binary
        return _NO_FRAMES
    if (
        ws.current_size is not None
        or not _parser_at_rest(ws)
        or ws.reader.buffer
        or ws.parser_exc is not None
        or ws.state is not State.OPEN
        or ws.debug
    ):
        return _NO_FRAMES
    max_message, max_fragment = ws.max_message_size, ws.max_fragment_size
    messages: list[bytes] = []
    start = 0
    while True:  # data[start] is 0x82 and at least 6 bytes are left
        length = data[start + 1] ^ 0x80  # 126 or more unless masked with a short length
        if length < 126:
            payload = start + 6
        elif length == 126 and size - start >= 8:
            length = (data[start + 2] << 8) | data[start + 3]
            payload = start + 8
        else:
            break
        end = payload + length
        if (
            end > size
            or (max_message is not None and length > max_message)
            or (max_fragment is not None and length > max_fragment)
        ):
            break
        messages.append(apply_mask(data[payload:end], data[payload - 4 : payload]))
        start = end
        if size - start < 6 or data[start] != 0x82:
            break
    return messages, start


class Phase(IntEnum):
    """Where a connection is. It only moves forward (``_enter``), phases may be skipped."""

    UPGRADING = 0  # reading the upgrade request
    ADMITTING = 1  # 101 sent; what the client sends waits until it is admitted
    JOINED = 2  # in its room: each message is handled as it arrives
    CLOSING = 3  # the server or the client decided to close: nothing more is handled
    LOST = 4  # the transport is gone


# Read on every frame: module globals, not attribute lookups on the enum class.
_UPGRADING, _JOINED, _CLOSING = Phase.UPGRADING, Phase.JOINED, Phase.CLOSING


def services_of(app_state: dict[str, Any]) -> Services:
    """The services the app's lifespan put in its state (``server.app.create_app``)."""
    services: Services | None = app_state.get("services")
    if services is None:
        raise RuntimeError("no services in the lifespan state: serve the app with lifespan on")
    return services


class _ServerProtocol(ServerProtocol):
    """websockets' sans-I/O server protocol, closing an oversized message with 4413.

    websockets fails such a connection with 1009, after which the official client reconnects
    and sends the same message again, without end (it stops only after 4400-4499)."""

    # What ``opened`` copies: the attributes of a protocol built the usual way, by its
    # extensions (the module's list or None) and size limit.
    _opened: ClassVar[dict[tuple[bool, int | None], dict[str, Any]]] = {}

    @classmethod
    def opened(
        cls, extensions: Sequence[ServerExtensionFactory] | None, max_size: int | None
    ) -> _ServerProtocol:
        """``cls(state=OPEN, extensions=extensions, max_size=max_size)`` in a third of the
        time (a join storm builds one per joiner): a copy of one built that way, with its own
        parser and buffers (and id, drawn when read). What the constructor sets on top of
        those is the same for every connection: limits, the shared extension factories and
        logger, no state."""
        key = (extensions is not None, max_size)
        template = cls._opened.get(key)
        if template is None:
            built = cls(state=State.OPEN, extensions=extensions, max_size=max_size)
            template = {k: v for k, v in built.__dict__.items() if k != "_id"}
            cls._opened[key] = template
        ws = cls.__new__(cls)
        ws.__dict__.update(template)
        ws.debug = ws.logger.isEnabledFor(logging.DEBUG)
        ws.extensions = []
        ws.reader = StreamReader()
        ws.events = []
        ws.writes = []
        ws.parser = ws.parse()
        next(ws.parser)
        return ws

    @property
    def id(self) -> uuid.UUID:
        """websockets' id of the connection, for its debug logs: drawn when first read. A
        uuid4 is a system call and an object per joiner of a storm, and nothing else reads it."""
        found: uuid.UUID | None = self.__dict__.get("_id")
        if found is None:
            found = self.__dict__["_id"] = uuid.uuid4()
        return found

    @id.setter
    def id(self, value: uuid.UUID) -> None:
        self.__dict__["_id"] = value

    def fail(self, code: int, reason: str = "") -> None:
        if code == WsCloseCode.MESSAGE_TOO_BIG:
            code = CloseCode.MESSAGE_TOO_BIG
        super().fail(code, reason)


class WebSocketConnection(asyncio.Protocol):
    """One websocket client: a ``crdt.ports.Peer`` straight on an asyncio transport.

    uvicorn creates it when an HTTP request asks for an upgrade, then feeds it the request.
    """

    __slots__ = (
        "_backlog",
        "_clock",
        "_close_timer",
        "_context",
        "_corked",
        "_early",
        "_fragments",
        "_loop",
        "_outbox",
        "_outbox_bytes",
        "_raw_frames",
        "_resume",
        "_server_state",
        "_upgrade",
        "_user_id",
        "_ws",
        "last_activity_s",
        "last_ping_s",
        "limit",
        "live",
        "phase",
        "services",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.services = services = services_of(app_state)
        self._server_state = server_state
        self._loop = _loop or asyncio.get_running_loop()
        self._clock = clock = services.idle.clock
        self.transport: asyncio.Transport | None = None
        settings = services.settings
        self.phase = Phase.UPGRADING
        self._upgrade: UpgradeRequestReader | None = UpgradeRequestReader()
        # Starts open: the request is read by ``_upgrade``; websockets checks it, answers it
        # and then parses frames, enforcing the message size limit (4413), fragments included.
        self._ws = _ServerProtocol.opened(
            _EXTENSIONS if settings.ws_per_message_deflate else None, settings.message_bytes_max
        )
        self._raw_frames = True
        # Frames for this turn of the event loop, written together at its end (None: none).
        self._outbox: list[bytes] | None = None
        self._outbox_bytes = 0
        # The 101 and a joiner's first frames, while they are gathered (None once written).
        self._corked: list[bytes] | None = None
        self._context: contextvars.Context | None = None
        self._user_id = ""
        self.live: LiveRoom | None = None
        # Messages that arrive before the client is admitted (None once it joined).
        self._early: list[bytes] | None = []
        self._fragments: list[bytes] = []
        now = clock()
        # What the client may send (messages and bytes per second; see ``_throttle``).
        self.limit = InboundLimit.full(
            settings.conn_messages_per_s,
            settings.conn_messages_burst,
            settings.conn_bytes_per_s,
            settings.conn_bytes_burst,
            settings.conn_throttle_close_s,
            now,
        )
        # Messages over the rate limits, waiting in order while the socket is not read (None:
        # none wait), and the timer that handles the next batch of them.
        self._backlog: deque[bytes] | None = None
        self._resume: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        # For the idle check: when a frame last arrived (and when a ping last went out).
        self.last_activity_s = now
        self.last_ping_s = now

    def _enter(self, phase: Phase) -> bool:
        """Move on to ``phase``; False, staying put, if the connection is there or past it."""
        if phase <= self.phase:
            return False
        self.phase = phase
        return True

    @property
    def closing(self) -> bool:
        """The server or the client decided to close (or the connection is gone)."""
        return self.phase >= _CLOSING

    # -- crdt.ports.Peer ------------------------------------------------------------------

    @property
    def user_id(self) -> str:
        return self._user_id

    def send(self, frame: bytes) -> bool:
        transport = self.transport
        if self.phase >= _CLOSING or transport is None:
            return True  # The connection is going away; dropping is harmless.
        services = self.services
        budget = services.settings.send_queue_bytes_max
        queued = transport.get_write_buffer_size() + self._outbox_bytes
        if not send_admitted(queued, len(frame), budget):
            return False
        if self._corked is not None:
            self._corked.append(wire(frame))
        elif self._raw_frames:
            self._queue(wire(frame))
        else:  # permessage-deflate: each connection has its own compressor state
            self._ws.send_binary(frame)
            self._flush()
        figures = services.metrics.wire
        figures.messages_out += 1
        figures.bytes_out += len(frame)
        return True

    def close(self, reason: Disconnect) -> None:
        self.close_with(*_CLOSE_CODES[reason])

    def _queue(self, data: bytes) -> None:
        """Write ``data`` at the end of this turn of the event loop, with the turn's frames.

        Also the 101 and the greeting: in a join storm, writing each as its handshake was read
        interleaved a loopback send (the kernel delivers it and wakes the reader) with every
        request's handling; written together at the end of the turn, a cold 500-client storm
        took 11-23 % less of the server's CPU (``bench.storm_bench``, paired rounds). When the
        server is not busy a turn is one read, so nothing waits longer than before."""
        outbox = self._outbox
        if outbox is None:
            self._outbox = [data]
            self._loop.call_soon(self._write_out)
        else:
            outbox.append(data)
        self._outbox_bytes += len(data)

    def _write_out(self) -> None:
        """Write this turn's frames (every other write calls this first, to keep the order)."""
        outbox, self._outbox = self._outbox, None
        if outbox is None:
            return
        self._outbox_bytes = 0
        transport = self.transport
        if transport is not None and self.phase is not Phase.LOST:
            transport.write(outbox[0] if len(outbox) == 1 else b"".join(outbox))

    # -- server.ws.admission.Joiner ----------------------------------------------------------

    def admit_as(self, user_id: str) -> None:
        self._user_id = user_id

    def accept(self, response: bytes, *, corked: bool = False) -> None:
        """Send the 101 (``corked``: with the greeting); what follows is gathered until the
        client joined (``_uncork``)."""
        self._enter(Phase.ADMITTING)
        self._raw_frames = not self._ws.extensions
        if corked:
            self._corked = [response]
            return
        self._queue(response)
        self._corked = []

    def joined(self, live: LiveRoom) -> None:
        self.live = live
        self._enter(_JOINED)
        # From here on, messages are handled in data_received, under this log context.
        self._context = contextvars.copy_context()
        early, self._early = self._early, None
        for message in early or ():
            if self.phase >= _CLOSING:
                break
            self._handle(message)
        self._uncork()

    def start_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task uvicorn knows of (it cancels them on shutdown)."""
        task = self._loop.create_task(coroutine)
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # -- closing ---------------------------------------------------------------------------

    def close_with(self, code: int, reason: str) -> None:
        """Leave the room at once, then send the close frame behind what is still queued."""
        if not self._enter(_CLOSING):
            return
        self._leave()
        self.services.metrics.closes.labels(str(code)).inc()
        transport = self.transport
        if transport is None:
            return
        # What still waits is not handled; the client's answer to the close frame is read.
        self._stop_throttling(transport)
        self._uncork()
        try:
            self._ws.send_close(code, reason)
        except InvalidState:  # the client's close frame came first
            pass
        self._flush()
        # The close frame queues behind whatever the client has not read; if it has not
        # answered within the grace period, drop the socket.
        self._close_timer = self._loop.call_later(_CLOSE_GRACE_S, transport.abort)

    def _linger(self, transport: asyncio.Transport) -> None:
        """The server failed the connection (a message too big, a protocol error) while the
        client may still be sending: end the writing side only, and read and drop the rest
        until the client closes, or for the grace period.

        Closing a socket with unread bytes makes the kernel answer with a reset, which can
        reach the client before it read the close frame: it would see 1006, which it retries,
        instead of 4413, which it does not."""
        if transport.can_write_eof():
            transport.write_eof()
        transport.resume_reading()  # websockets discards what comes
        if self._close_timer is None:
            self._close_timer = self._loop.call_later(_CLOSE_GRACE_S, transport.abort)

    def _leave(self) -> None:
        services = self.services
        services.idle.discard(self)
        if self.live is not None:
            self.live.leave(self)

    def _flush(self) -> None:
        """Write what websockets queued (handshake, control frames); an empty chunk means
        the server side is done and closes the TCP connection."""
        transport = self.transport
        if transport is None:
            return
        for chunk in self._ws.data_to_send():
            self._write_out()
            if not chunk:
                self._uncork()
                self._write_out()  # what was corked, before the end of the connection
                if self._ws.parser_exc is None:
                    transport.close()
                else:
                    self._linger(transport)
            elif self._corked is not None:
                self._corked.append(chunk)
            else:
                transport.write(chunk)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A uvloop transport is not an asyncio.Transport subclass, but has the same methods.
        self.transport = t = cast(asyncio.Transport, transport)
        # Reading is this protocol's to pause from now on: uvicorn's HTTP protocol, which hands
        # over a later upgrade on a kept-alive connection, may have paused it for a pipelined
        # request (resuming a transport that reads is a no-op).
        t.resume_reading()
        self._server_state.connections.add(self)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        leaving = self.phase < _CLOSING
        self.phase = Phase.LOST  # nothing is sent to it any more
        if leaving:
            self._catch_up()  # the client sent these before it went
        if self._upgrade is not None:
            self._upgrade.close()
            self._upgrade = None
        self._server_state.connections.discard(self)
        for timer in (self._close_timer, self._resume):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._resume = None
        if leaving:
            self._leave()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def data_received(self, data: bytes) -> None:
        if self._context is not None:
            self._context.run(self._receive, data)
        else:
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        if self.phase is _UPGRADING:
            self._read_upgrade(data)
            return
        ws = self._ws
        if self._raw_frames and self.phase < _CLOSING:
            messages, taken = _whole_binary_frames(ws, data)
            if messages:
                self.last_activity_s = now = self._clock()
                for message in messages:
                    # Once closing, the rest are dropped, as ``_message`` drops them.
                    self._message(message, now)
                if taken == len(data):
                    if self._backlog is not None and self._resume is None and self.phase < _CLOSING:
                        self._throttle(started=True)
                    self._flush()
                    return
                data = data[taken:]  # from a frame's start: websockets reads on from there
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        if ws.parser_exc is not None:
            self._catch_up()  # what came before the bad frame
            if self._enter(_CLOSING):
                # websockets failed the connection (too big: 4413, protocol error: 1002)
                # and queued the close frame.
                self._leave()
                code = ws.close_sent.code if ws.close_sent is not None else CloseCode.MALFORMED
                self.services.metrics.closes.labels(str(code)).inc()
        elif self._backlog is not None and self._resume is None and self.phase < _CLOSING:
            self._throttle(started=True)
        self._flush()

    def shutdown(self) -> None:
        """uvicorn is stopping: close 1012 behind everything already queued."""
        transport = self.transport
        if transport is None:
            return
        if self.phase is _UPGRADING:
            self._reject(503, "server restarting")
            return
        self._catch_up()  # received before the server stopped: kept, as everything accepted
        self.close_with(CloseCode.SERVER_RESTARTING, "server restarting")
        # Do not wait for the client's answer: the socket closes once the close frame, and
        # everything queued before it, is written.
        transport.close()

    # -- handshake -------------------------------------------------------------------------

    def _read_upgrade(self, data: bytes) -> None:
        reader = self._upgrade
        assert reader is not None
        try:
            reader.feed(data)
        except HeadTooLarge as exc:
            self._upgrade = None
            self._reject(431, str(exc))
            return
        except ValueError as exc:
            self._upgrade = None
            self._reject(400, str(exc))
            return
        if reader.head is None:
            return  # more of the request head to come
        self._upgrade = None
        self._handshake(reader.head)
        if reader.rest and self.phase < _CLOSING:
            self._receive(reader.rest)

    def _handshake(self, head: UpgradeHead) -> None:
        join = read_join(self._ws, head, self.services.settings.ws_origins)
        if isinstance(join, Response):  # 404, 403, or not a valid upgrade request (400/426)
            self._reject(join)
            return
        params = join.params
        try:
            token = request_token(params.get("token", ()), join.authorizations)
        except AuthError as exc:
            # A refusal once open is a close code, as for any other token.
            self.accept(join.response)
            self.close_with(CloseCode.NOT_AUTHENTICATED, exc.code)
            return
        wants_saved = params.get("saved", [""])[-1] in ("1", "true")
        join_on_upgrade(self, join.response, token, join.project, wants_saved)

    def _reject(self, status: int | Response, text: str = "") -> None:
        """Answer the upgrade request with an HTTP error and close."""
        self._enter(_CLOSING)
        response = status if isinstance(status, Response) else self._ws.reject(status, text)
        if self.transport is not None:
            self.transport.write(response.serialize())
            self.transport.close()

    def _uncork(self) -> None:
        """Queue the greeting of a joiner and the answers to what it sent meanwhile as one
        chunk, behind whatever is queued already (the 101 of a join that waited): one write
        instead of three or four in a join storm."""
        corked, self._corked = self._corked, None
        if corked and self.transport is not None:
            self._queue(b"".join(corked))

    # -- frames ----------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self.last_activity_s = now = self._clock()
            if not frame.fin:
                self._fragments.append(bytes(frame.data))
                return
            if self._fragments:
                self._fragments.append(bytes(frame.data))
                message = b"".join(self._fragments)
                self._fragments = []
            else:
                message = bytes(frame.data)
            self._message(message, now)
        elif opcode is Opcode.TEXT:
            self.close_with(CloseCode.MALFORMED, "text frames are not part of the protocol")
        elif opcode is Opcode.CLOSE:
            # websockets queued the echo (or this answers ours) and the end of the connection.
            if self.phase < _CLOSING:
                self._catch_up()  # sent before the close frame
            if self._enter(_CLOSING):
                self._leave()
        else:  # ping (websockets queued the pong) or pong
            self.last_activity_s = self._clock()

    def _message(self, message: bytes, now: float) -> None:
        """A whole message from the client, which arrived at ``now``."""
        if self.phase >= _CLOSING:
            return
        if self.phase is _JOINED:
            backlog = self._backlog
            if backlog is not None:
                backlog.append(message)  # behind what already waits
            elif self.limit.take(len(message), now):
                self._handle(message)
            else:
                self._backlog = deque((message,))  # see ``_throttle``
            return
        self.limit.charge(len(message), now)
        early = self._early
        assert early is not None
        if len(early) < _EARLY_MESSAGES_MAX and (
            sum(map(len, early)) + len(message) <= _EARLY_BYTES_MAX
        ):
            early.append(message)
        else:
            self.close_with(CloseCode.RATE_LIMITED, "too much sent before admission")

    def _handle(self, message: bytes) -> bool:
        """Give ``message`` to the room; False if that closed the connection."""
        services = self.services
        live = self.live
        assert live is not None
        figures = services.metrics.wire
        figures.messages_in += 1
        figures.bytes_in += len(message)
        started = time.perf_counter()
        try:
            live.receive(self, message)
        except ProtocolError as exc:
            log.info("malformed message: %s", exc, extra={"project_id": live.doc_id})
            self.close_with(CloseCode.MALFORMED, str(exc)[:120])
            return False
        except Exception:  # a bug: this connection goes, the room and the others stay
            log.exception("handling a message failed", extra={"project_id": live.doc_id})
            self.close_with(CloseCode.INTERNAL_ERROR, "internal error")
            return False
        figures.handled(time.perf_counter() - started)
        return True

    # -- rate limits -------------------------------------------------------------------------

    def _throttle(self, *, started: bool) -> None:
        """Messages wait: stop reading the socket (TCP pushes back on the client) and handle
        them in batches as the limits refill. One that stays throttled for longer than
        ``conn_throttle_close_s`` is closed instead."""
        backlog, transport = self._backlog, self.transport
        assert backlog is not None and transport is not None
        now = self._clock()
        limit = self.limit
        if started:
            limit.throttled(now)
            transport.pause_reading()
        if limit.overdue(now, len(backlog), sum(map(len, backlog))):
            self.close_with(CloseCode.RATE_LIMITED, "over the rate limit for too long; slow down")
            return
        self._resume = self._loop.call_later(limit.wait_s(len(backlog[0]), now), self._drain)

    def _drain(self) -> None:
        """Handle the waiting messages the limits allow now; read again once none wait."""
        self._resume = None
        backlog, transport = self._backlog, self.transport
        if backlog is None or transport is None:
            return
        now = self._clock()
        take = self.limit.take
        while backlog and self.phase is _JOINED and take(len(backlog[0]), now):
            self._handle(backlog.popleft())
        if self.phase >= _CLOSING:
            return
        if backlog:
            self._throttle(started=False)
            return
        self._backlog = None
        self.limit.caught_up(now)
        transport.resume_reading()

    def _catch_up(self) -> None:
        """The client ends (or the server stops): handle what waits, at once and in order."""
        backlog, self._backlog = self._backlog, None
        if backlog is None:
            return
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        # Not read again: the connection ends.
        for message in backlog:
            if not self._handle(message):
                break

    def _stop_throttling(self, transport: asyncio.Transport) -> None:
        """The server closes: what waits is dropped, and the socket is read again."""
        if self._backlog is not None:
            self._backlog = None
            transport.resume_reading()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None

    # -- server.ws.idle.Watched ----------------------------------------------------------------

    def ping(self) -> None:
        """Keep proxies and NATs from dropping a quiet connection."""
        if self.phase >= _CLOSING or self.transport is None:
            return
        self.last_ping_s = self._clock()
        try:
            self._ws.send_ping(b"")
        except InvalidState:
            return
        self._flush()

    @property
    def busy(self) -> bool:
        """Something is still waiting to go out (a slow link is busy, not idle), or messages
        over the rate limits wait to be handled (its socket is not read meanwhile)."""
        if self._backlog is not None:
            return True
        return self.transport is not None and self.transport.get_write_buffer_size() > 0


class JoinRouter(FirstRequestRouter):
    """uvicorn's ``http`` protocol for ``flowai serve``: a connection that opens with a join
    of ``/ws/{project_id}`` goes straight to ``WebSocketConnection`` (see ``server.ws.router``).
    """

    websocket_request = b"GET " + PATH_PREFIX.encode()
    websocket_protocol = WebSocketConnection

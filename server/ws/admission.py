"""Admitting a websocket client to its room: whose token, which project, may they join.

The 101 goes out before the client is admitted (a refusal is then a close code, which an HTTP
status would hide from a browser), and nothing of the document is sent before it is. A join
completes in one of three ways, cheapest first:

- in the handshake's own callback (``join_on_upgrade``): the token verifies without I/O and the
  room is live and knows its members; the greeting leaves in the same write as the 101;
- as a callback on a cold room (``Rooms.wait_open``): every join that arrives while a room
  opens waits on that one load and is admitted in the step that opens it, without a task;
- in a task of its own (``_open``), only for what has to be waited for otherwise: a signing key
  to fetch (JWKS), a membership the room's list does not answer.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from crdt.ports import Peer
from server import log_context
from server.auth import AuthError
from server.close_codes import CloseCode
from server.ws.frames import project_id as parse_project_id
from server.ws.idle import Watched

if TYPE_CHECKING:
    from crdt.live.registry import LiveRoom
    from server.composition.services import Services

log = logging.getLogger(__name__)


class Joiner(Watched, Peer, Protocol):
    """The connection, as admission sees it."""

    services: Services

    @property
    def closing(self) -> bool: ...

    def admit_as(self, user_id: str) -> None: ...

    def accept(self, response: bytes, *, corked: bool = False) -> None:
        """Send the 101 (``corked``: in one write with the greeting that follows)."""
        ...

    def joined(self, live: LiveRoom) -> None:
        """In the room now: handle what the client sent meanwhile, then everything it sends."""
        ...

    def close_with(self, code: int, reason: str) -> None: ...

    def start_task(self, coroutine: Coroutine[Any, Any, None]) -> None: ...


@dataclass(frozen=True, slots=True)
class Refused:
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class _Verified:
    """A valid token for a well-formed project id, whose room is not live (or does not
    know its members)."""

    user_id: str
    project_id: str


def join_on_upgrade(
    conn: Joiner, response: bytes, token: str | None, project: str, saved: bool
) -> None:
    """Accept a valid upgrade with ``response`` (its 101) and admit the client, by the
    cheapest of the three ways that answers."""
    admitted = _admit_now(conn, token, project)
    if isinstance(admitted, tuple):
        conn.accept(response, corked=True)
        _join_now(conn, *admitted, saved)
        return
    # Otherwise open at once and admit afterwards: the client sends its sync step 1 while
    # the token, the membership and the room are checked, so the answer leaves with the
    # greeting instead of a round trip later.
    conn.accept(response)
    if isinstance(admitted, Refused):
        conn.close_with(admitted.code, admitted.reason)
        return
    if isinstance(admitted, _Verified):
        # A cold room (or one being opened) admits this join when it opens, without a task.
        user_id = admitted.user_id
        opened = partial(_room_opened, conn, user_id, token, project, saved)
        if conn.services.rooms.wait_open(admitted.project_id, user_id, opened):
            return
    conn.start_task(_open_safely(conn, token, project, saved))


def _join_now(conn: Joiner, live: LiveRoom, can_edit: bool, saved: bool) -> None:
    """Join a live room at once: ``_open`` for an admission that waited for nothing."""
    contextvars.copy_context().run(_join_live, conn, live, can_edit, saved)


def _join_live(conn: Joiner, live: LiveRoom, can_edit: bool, saved: bool) -> None:
    log_context.request_id.set(log_context.connection_id())
    log_context.project_id.set(live.doc_id)
    services = conn.services
    services.idle.add(conn)
    live.join(conn, can_edit=can_edit, wants_saved=saved)
    conn.joined(live)


def _room_opened(
    conn: Joiner, user_id: str, token: str | None, project: str, saved: bool, live: LiveRoom | None
) -> None:
    """The room this join waited for opened (None: its load failed, or it was opened for
    someone who may not join): join it if its member list answers, else ``_open``."""
    if conn.closing:  # the client left, or the server is stopping
        return
    try:
        known = live.member(user_id) if live is not None and not live.closing else None
        if live is None or known is None:
            conn.start_task(_open_safely(conn, token, project, saved))
            return
        admitted = _admitted(conn, user_id, *known)
        if isinstance(admitted, Refused):
            conn.close_with(admitted.code, admitted.reason)
            return
        _join_now(conn, live, admitted, saved)
    except Exception:  # a bug: this connection goes, the room and the other joins stay
        log.exception("admitting a websocket connection failed")
        conn.close_with(CloseCode.INTERNAL_ERROR, "internal error")


async def _open_safely(conn: Joiner, token: str | None, project: str, saved: bool) -> None:
    try:
        await _open(conn, token, project, saved)
    except Exception:  # a bug: this connection goes, nothing else does
        log.exception("opening a websocket connection failed")
        conn.close_with(CloseCode.INTERNAL_ERROR, "internal error")


async def _open(conn: Joiner, token: str | None, project: str, saved: bool) -> None:
    log_context.request_id.set(log_context.connection_id())
    services = conn.services
    admitted = await _admit(conn, token, project)
    if conn.closing:  # the client left, or the server is stopping
        return
    if isinstance(admitted, Refused):
        conn.close_with(admitted.code, admitted.reason)
        return
    project_id, can_edit = admitted
    log_context.project_id.set(project_id)
    services.idle.add(conn)
    try:
        live = await services.rooms.join(project_id, conn, can_edit=can_edit, wants_saved=saved)
    except Exception:  # the room could not be loaded (database unreachable)
        log.exception("loading the room failed", extra={"project_id": project_id})
        conn.close_with(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
        return
    if conn.closing:  # the client left, or was closed, while the room loaded
        live.leave(conn)
        return
    conn.joined(live)


def _admit_now(
    conn: Joiner, token: str | None, project: str
) -> tuple[LiveRoom, bool] | Refused | _Verified | None:
    """``_admit`` when nothing has to be waited for; when the room has to be waited for,
    who the token is for; None when the token may need I/O."""
    services = conn.services
    try:
        identity = services.verifier.verify_now(token)
    except AuthError as exc:
        return Refused(CloseCode.NOT_AUTHENTICATED, exc.code)
    if identity is None:
        return None  # its signing key may have to be fetched
    project_id = parse_project_id(project)
    if project_id is None:
        return Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
    live = services.rooms.live_now(project_id)
    known = live.member(identity.user_id) if live is not None else None
    if live is None or known is None:
        return _Verified(identity.user_id, project_id)
    admitted = _admitted(conn, identity.user_id, *known)
    return admitted if isinstance(admitted, Refused) else (live, admitted)


async def _admit(conn: Joiner, token: str | None, project: str) -> tuple[str, bool] | Refused:
    """The project id and whether the user may edit, or the close code and reason."""
    services = conn.services
    try:
        identity = await services.verifier.verify(token)
    except AuthError as exc:
        return Refused(CloseCode.NOT_AUTHENTICATED, exc.code)
    project_id = parse_project_id(project)
    if project_id is None:
        return Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
    # A live room knows its members (kept current by every access change it hears), and
    # a cold one is opened for this join with one read that answers every other joiner.
    known = await services.rooms.member(project_id, identity.user_id)
    if known is None:
        try:
            exists, role = await services.directory.access(uuid.UUID(project_id), identity.user_id)
        except Exception:  # the database is unreachable: the client should retry
            log.exception("membership check failed")
            return Refused(CloseCode.TRY_AGAIN_LATER, "temporarily unavailable")
        if not exists:
            return Refused(CloseCode.NO_SUCH_PROJECT, "no such project")
        known = (role is not None, role is not None and role.can_edit)
    admitted = _admitted(conn, identity.user_id, *known)
    return admitted if isinstance(admitted, Refused) else (project_id, admitted)


def _admitted(conn: Joiner, user_id: str, is_member: bool, can_edit: bool) -> bool | Refused:
    """Whether the admitted user may edit, or why they are refused."""
    if not is_member:
        return Refused(CloseCode.NOT_A_MEMBER, "not a member of this project")
    services = conn.services
    if services.idle.per_user.get(user_id, 0) >= services.settings.user_connections_max:
        return Refused(CloseCode.RATE_LIMITED, "too many open connections for this user")
    conn.admit_as(user_id)
    return can_edit

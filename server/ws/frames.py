"""What the websocket endpoint reads from an upgrade request and writes per frame: pure."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode

from server.auth import AuthError

PATH_PREFIX = "/ws/"

# The last two frames encoded, most recent first (see ``wire``).
_recent_wire: list[tuple[bytes, bytes]] = [(b"", b""), (b"", b"")]


def wire(frame: bytes) -> bytes:
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
    encoded = Frame(Opcode.BINARY, frame).serialize(mask=False)
    recent[1] = recent[0]
    recent[0] = (frame, encoded)
    return encoded


# A project id as the API hands it out; checked with one match instead of a UUID parse.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def project_id(project: str) -> str | None:
    """The project id in canonical form, or None if it is not a UUID."""
    if _CANONICAL_UUID.fullmatch(project):
        return project
    try:
        return str(uuid.UUID(project))
    except ValueError:
        return None


def request_token(query_tokens: Iterable[str], authorizations: Iterable[str]) -> str | None:
    """The access token of an upgrade: ``?token=`` or an ``Authorization: Bearer`` header.

    Raises ``AuthError`` (``token_ambiguous``) when they name different tokens: which one the
    client meant cannot be told, so neither is taken. The same token twice is fine."""
    token: str | None = None
    for candidate in query_tokens:
        token = _one_token(token, candidate)
    for header in authorizations:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            token = _one_token(token, value.strip())
    return token


def _one_token(token: str | None, candidate: str) -> str | None:
    if not candidate or candidate == token:
        return token
    if token is not None:
        raise AuthError("token_ambiguous", "the request carries two different access tokens")
    return candidate


def origin_allowed(origins: list[str], host: str, allowed: frozenset[str]) -> bool:
    """Whether an upgrade with these ``Origin`` headers may open: no allow-list, no Origin
    (not a browser), the server's own pages (the Origin's host is the request's ``Host``), or
    an origin on the list (``scheme://host[:port]``, compared case-insensitively)."""
    if not allowed or not origins:
        return True
    if len(origins) > 1:
        return False
    origin = origins[0].strip().lower().rstrip("/")
    if origin in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc == host.strip().lower()

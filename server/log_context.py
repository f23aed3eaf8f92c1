"""Request and project ids on every log record, through context variables.

A pure ASGI middleware (no per-request task or body buffering) stamps each HTTP request and
websocket with a request id (the client's ``X-Request-ID`` when it sends one, else a new one)
and echoes it on HTTP responses.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
project_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("project_id", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# Connection ids: 20 random hex digits drawn once per process (again in a forked child), then
# a 12-digit count. As long as a uuid4's hex and as unique, without a system call per joiner
# of a join storm (drawing 16 random bytes for each was 2 % of a storm's CPU).
_id_prefix = ""
_id_count = itertools.count()


def _draw_id_prefix() -> None:
    global _id_prefix, _id_count
    _id_prefix = os.urandom(10).hex()
    _id_count = itertools.count()


_draw_id_prefix()
os.register_at_fork(after_in_child=_draw_id_prefix)


def connection_id() -> str:
    """A new id for a websocket connection's log lines: 32 hex digits."""
    return f"{_id_prefix}{next(_id_count):012x}"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "project_id", None) is None:
            record.project_id = project_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _SAFE_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            # A websocket's sends are frames: leave them unwrapped (this is the hot path).
            await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)
        finally:
            request_id.reset(token)

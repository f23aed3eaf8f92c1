"""REST errors: ``{"error": {"code", "message", "request_id"}}`` with the right status.

Every error leaves in this shape: ours (``ApiError``), validation (422), the framework's HTTP
errors (404, 405 ...), the request-body limit (413, whether the client sent a Content-Length or
chunked the body) and an unexpected exception (500). ``request_id`` repeats the response's
``X-Request-ID`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import log_context

# JSON routes share the app's body limit (FLOWAI_HTTP_BODY_BYTES_MAX); upload routes lift it
# to this ceiling and enforce their own, configurable limit while streaming to storage.
UPLOAD_BODY_BYTES_CEILING = 8 * 1024**3


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, dict[str, Any]]:
    return {"error": {"code": code, "message": message, "request_id": log_context.request_id.get()}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return error_response(422, "invalid_request", details)

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def _unstorable_text(_: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL text cannot hold U+0000; whatever field carried it, it is the client's.
        return error_response(
            422, "invalid_text", "text contains a character that cannot be stored (NUL)"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 413:
            message = "the request body is too large"
        return error_response(exc.status_code, code, message, exc.headers)


def _json_message(status: int, code: str, message: str) -> tuple[Message, Message]:
    response = error_response(status, code, message)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": response.raw_headers,
    }
    return start, {"type": "http.response.body", "body": response.body}


class ErrorShapeMiddleware:
    """The errors raised or sent outside the app's exception handlers, in our shape.

    - The request-body limit (Starlette's ``RequestBodyLimitMiddleware``, which routes lift
      with ``max_body_size=``) answers a declared Content-Length over the limit with a
      ``text/plain`` 413 of its own, in place of whatever the app answered. That answer is
      swapped for ours here, on its way out.
    - An exception no handler took becomes a JSON 500 (the server still logs it: it is
      raised on).

    Runs inside ``RequestIdMiddleware``, so the request id is known.
    """

    def __init__(self, app: ASGIApp, *, body_bytes_max: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=body_bytes_max)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        replacing = False

        async def shaped_send(message: Message) -> None:
            nonlocal started, replacing
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 413 and _is_plain_text(message):
                    replacing = True
                    start, body = _json_message(
                        413, "body_too_large", "the request body is too large"
                    )
                    await send(start)
                    await send(body)
                    return
            elif replacing:
                return  # the plain body of the replaced answer
            await send(message)

        try:
            await self.app(scope, receive, shaped_send)
        except Exception:
            if not started:
                start, body = _json_message(500, "internal_error", "internal server error")
                await send(start)
                await send(body)
            raise


def _is_plain_text(message: Message) -> bool:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).startswith(b"text/plain")
    return False

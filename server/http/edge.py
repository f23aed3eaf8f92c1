"""What wraps every HTTP request before a route sees it, in order from the outside:

1. CORS (``FLOWAI_CORS_ORIGINS``): preflights and the headers a browser on another origin
   needs, errors included, so a web app can read our error bodies and their request id.
2. The request id (``X-Request-ID``), set before anything can fail.
3. The error shape: the request-body limit (``FLOWAI_HTTP_BODY_BYTES_MAX``) and unexpected
   exceptions answer in the JSON error shape, with the request id.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

from server.http.errors import ErrorShapeMiddleware, error_response, install_error_handlers
from server.log_context import RequestIdMiddleware
from server.settings import Settings

CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Range", "If-Range"]
# Readable by a script on another origin beyond the CORS-safelisted ones.
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "Content-Range",
    "Accept-Ranges",
    "Content-Length",
    "Content-Disposition",
]
CORS_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
CORS_MAX_AGE_S = 600


class CorsMiddleware(CORSMiddleware):
    """Starlette's, with refused preflights in our error shape, and no CORS headers at all
    for an origin that is not allowed (Starlette sends the allowed methods and headers)."""

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] != "http.response.start" or origin is None:
            await send(message)
        elif self.is_allowed_origin(origin=origin):
            await super().send(message, send, request_headers)
        else:
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            headers.add_vary_header("Origin")
            await send(message)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {"Vary": response.headers["vary"]} if "vary" in response.headers else {}
        if self.is_allowed_origin(origin=request_headers["origin"]):
            headers = {
                k: v
                for k, v in response.headers.items()
                if k.lower() not in ("content-length", "content-type")
            }
        return error_response(
            response.status_code, "cors_refused", bytes(response.body).decode(), headers
        )


def install_http_edge(app: FastAPI, settings: Settings) -> None:
    install_error_handlers(app)
    # add_middleware wraps what was added before: the last one added is the outermost.
    app.add_middleware(ErrorShapeMiddleware, body_bytes_max=settings.http_body_bytes_max)
    app.add_middleware(RequestIdMiddleware)
    origins = settings.cors_origin_list()
    if origins:
        # Bearer tokens, not cookies: no credentials mode, so "*" is usable too.
        app.add_middleware(
            CorsMiddleware,
            allow_origins=origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_S,
        )

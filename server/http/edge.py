"""What wraps every HTTP request before a route sees it, in order from the outside:

1. CORS (``FLOWAI_CORS_ORIGINS``): preflights and the headers a browser on another origin
   needs, errors included, so a web app can read our error bodies and their request id.
2. The request id (``X-Request-ID``), set before anything can fail.
3. The error shape: the request-body limit (``FLOWAI_HTTP_BODY_BYTES_MAX``) and unexpected
   exceptions answer in the JSON error shape, with the request id.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from server.http.errors import ErrorShapeMiddleware, install_error_handlers
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


def install_http_edge(app: FastAPI, settings: Settings) -> None:
    install_error_handlers(app)
    # add_middleware wraps what was added before: the last one added is the outermost.
    app.add_middleware(ErrorShapeMiddleware, body_bytes_max=settings.http_body_bytes_max)
    app.add_middleware(RequestIdMiddleware)
    origins = settings.cors_origin_list()
    if origins:
        # Bearer tokens, not cookies: no credentials mode, so "*" is usable too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_ALLOWED_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_S,
        )

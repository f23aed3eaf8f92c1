"""The live timeline inspector: a static page at ``/`` and its assets under ``/inspector/``.

The page is built from ``inspector/`` (TypeScript, bundled with esbuild) into
``server/static/inspector/``, which is committed and shipped in the wheel: serving it needs
no Node. It talks to this same origin only (REST under ``/api``, the websocket at ``/ws``).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "inspector"
ASSETS_PATH = "/inspector"

# Same origin only: the page loads nothing from elsewhere and connects only to this server.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Asset names carry no hash, so browsers revalidate (ETag) instead of caching blindly.
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Assets(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_HEADERS)
        return response


def install_inspector(app: FastAPI) -> None:
    """Serve the inspector page at ``/`` and its assets under ``/inspector/``."""
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def inspector_page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=_HEADERS)

    app.mount(ASSETS_PATH, _Assets(directory=STATIC_DIR), name="inspector")

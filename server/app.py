"""``create_app``: the composition root. The lifespan builds every service and passes it in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from server import collector
from server.composition.build import build_services
from server.composition.services import Services
from server.http import ai as http_ai
from server.http import credits as http_credits
from server.http import jobs as http_jobs
from server.http import media as http_media
from server.http import projects as http_projects
from server.http import render as http_render
from server.http import versions as http_versions
from server.http.edge import install_http_edge
from server.http.inspector import install_inspector
from server.settings import Settings

# Give this to uvicorn's ``ws`` setting: ``/ws/{project_id}`` is served by this protocol class
# on the transport, not through ASGI (see ``server.ws``).
WEBSOCKET_PROTOCOL = "server.ws:WebSocketConnection"
# And this to its ``http`` setting: a connection that opens with a join skips uvicorn's HTTP
# protocol (see ``server.ws.router``); every other request is served by it as usual.
HTTP_PROTOCOL = "server.ws:JoinRouter"

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 2.0


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """The ASGI app. ``freeze_heap`` is for a process that runs only this app (``flowai
    serve``): once started, everything allocated so far is moved out of the garbage
    collector's reach, young collections run less often and, when the process is quiet, ahead
    of time (see ``server.collector``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
        async with AsyncExitStack() as stack:
            app.state.services = services = await build_services(settings, stack)
            if freeze_heap:
                collector.tune()
                quiet = asyncio.create_task(collector.collect_when_quiet(), name="gc-when-quiet")
                stack.callback(quiet.cancel)
            log.info("ready", extra={"host": settings.host, "port": settings.port})
            # The lifespan state: uvicorn hands it to the websocket protocol (``server.ws``).
            yield {"services": services}
            log.info("shutting down: flushing rooms")

    app = FastAPI(
        title="FlowAI collaboration backend",
        version="0.1.0",
        lifespan=lifespan,
    )
    # Errors in one JSON shape, the request id, the body limit and CORS (FLOWAI_CORS_ORIGINS).
    install_http_edge(app, settings)
    app.include_router(http_projects.router)
    app.include_router(http_credits.router)
    app.include_router(http_versions.router)
    app.include_router(http_ai.router)
    app.include_router(http_jobs.router)
    app.include_router(http_media.router)
    app.include_router(http_render.router)
    install_inspector(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        services: Services = app.state.services
        return PlainTextResponse(
            services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        services: Services = app.state.services
        checks: dict[str, str] = {}
        for name, probe in services.readiness.items():
            try:
                await asyncio.wait_for(probe(), _READY_TIMEOUT_S)
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                checks[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return app


def app_from_environment() -> FastAPI:
    """The app of one ``flowai serve`` worker process, configured from the environment."""
    from server.logging_setup import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings, freeze_heap=True)

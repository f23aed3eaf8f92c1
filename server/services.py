"""The objects a running server is made of, built once by the app's lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from billing.service import CreditService
from crdt.ports import DocumentStore
from crdt.rooms import Rooms
from persistence.db import Database
from persistence.projects import ProjectDirectory
from persistence.versions import PgVersions
from render.job import RenderService
from server.ai_services import AiServices
from server.auth import TokenVerifier
from server.metrics import Metrics
from server.settings import Settings
from server.ws import IdleConnections


@dataclass
class Services:
    settings: Settings
    verifier: TokenVerifier
    db: Database
    directory: ProjectDirectory
    store: DocumentStore
    rooms: Rooms
    versions: PgVersions
    idle: IdleConnections
    credits: CreditService
    metrics: Metrics
    # name -> probe; each raises when its dependency is unreachable (``/readyz``).
    readiness: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    # AI providers, media, jobs and their queue (``server.ai_services``).
    ai: AiServices | None = None
    # The render backend (``server.render_services``); its jobs run through ``ai``.
    render: RenderService | None = None

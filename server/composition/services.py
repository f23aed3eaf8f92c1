"""The objects a running server is made of, built once by the app's lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from billing.service import CreditService
from crdt.live.registry import Rooms
from crdt.ports import DocumentStore
from persistence.db import Database
from persistence.projects import ProjectDirectory
from persistence.versions import PgVersions
from render.job import RenderService
from server.auth import TokenVerifier
from server.composition.ai import AiServices
from server.metrics import Metrics
from server.settings import Settings
from server.ws.idle import IdleConnections


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
    # AI providers, media, jobs and their queue (``server.composition.ai``).
    ai: AiServices | None = None
    # The render backend (``server.composition.render``); its jobs run through ``ai``.
    render: RenderService | None = None

"""The objects a running server is made of, built once by the app's lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from crdt.ports import DocumentStore
from crdt.rooms import Rooms
from persistence.db import Database
from persistence.projects import ProjectDirectory
from persistence.versions import PgVersions
from server.auth import TokenVerifier
from server.settings import Settings


@dataclass
class Services:
    settings: Settings
    verifier: TokenVerifier
    db: Database
    directory: ProjectDirectory
    store: DocumentStore
    rooms: Rooms
    versions: PgVersions
    # name -> probe; each raises when its dependency is unreachable (``/readyz``).
    readiness: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)

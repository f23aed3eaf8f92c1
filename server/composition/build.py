"""``build_services``: the one place that builds the objects a running server is made of.

The FastAPI lifespan (``server.app``) calls it once and hands the result to the routes and the
websocket transport; ``flowai worker`` builds its smaller stack from the same parts
(``collaboration``, ``ai``, ``render``). Everything is passed in explicitly: no module-level
engines or settings.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from billing.service import CreditService
from persistence.ledger_pg import PgLedgerStore
from persistence.users import RevokedUsers
from server.auth import TokenVerifier
from server.close_codes import CloseCode
from server.composition.ai import build_ai_services, workers_in_process
from server.composition.collaboration import build_collaboration
from server.composition.render import build_render_service
from server.composition.services import Services
from server.metrics import Metrics, sample_database
from server.settings import Settings
from server.ws.idle import IdleConnections

__all__ = ["build_services"]

log = logging.getLogger(__name__)


async def build_services(settings: Settings, stack: AsyncExitStack) -> Services:
    verifier = TokenVerifier(
        settings.resolved_jwt_secret(),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        jwks_url=settings.jwt_jwks_url,
        leeway_s=settings.jwt_leeway_s,
        token_bytes_max=settings.jwt_bytes_max,
    )
    metrics = Metrics()
    collab = await build_collaboration(settings, stack, metrics=metrics, serve_joins=True)
    db, rooms, fanout, dsn = collab.db, collab.rooms, collab.fanout, collab.dsn
    metrics.track(metrics.rooms, lambda: len(rooms))
    revoked = RevokedUsers(db)
    await revoked.refresh()
    verifier.revoked = revoked
    idle = IdleConnections(settings.idle_timeout_s, settings.ws_ping_interval_s)
    refresher = asyncio.create_task(
        _refresh_revoked(revoked, idle, settings.revoked_users_refresh_s), name="revoked-users"
    )
    stack.callback(refresher.cancel)
    metrics.track(metrics.connections, lambda: len(idle.connections))
    idle_task = asyncio.create_task(idle.run(), name="idle-connections")
    stack.callback(idle_task.cancel)
    credits = CreditService(PgLedgerStore(db))
    # Holds abandoned by a crashed job expire; several instances may sweep at once.
    sweeper = asyncio.create_task(
        credits.sweep_forever(interval_s=settings.credit_sweep_interval_s), name="credit-sweeper"
    )
    stack.callback(sweeper.cancel)
    sampler = asyncio.create_task(
        sample_database(metrics, db, settings.metrics_sample_interval_s), name="metrics-sampler"
    )
    stack.callback(sampler.cancel)
    services = Services(
        settings,
        verifier,
        db,
        collab.directory,
        collab.store,
        rooms,
        collab.versions,
        idle,
        credits,
        metrics,
    )
    services.readiness["database"] = db.ping
    if fanout is not None:
        services.readiness["redis"] = fanout.ping
    services.render = build_render_service(settings)
    services.ai = await build_ai_services(
        settings,
        dsn,
        db,
        rooms,
        stack,
        credits=credits,
        run_workers=workers_in_process(settings),
        kinds=[services.render.job_kind()],
    )
    return services


async def _refresh_revoked(revoked: RevokedUsers, idle: IdleConnections, every_s: float) -> None:
    """Reload revoked users (any instance may have added one) and close their connections."""
    while True:
        await asyncio.sleep(every_s)
        try:
            added = await revoked.refresh()
        except Exception:  # the database is unreachable: keep the last copy and retry
            log.warning("could not reload revoked users", exc_info=True)
            continue
        for conn in list(idle.connections):
            if conn.user_id in added:
                conn.close_with(CloseCode.NOT_AUTHENTICATED, "access revoked")



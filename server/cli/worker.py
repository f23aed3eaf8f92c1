"""``flowai worker``: run AI and render jobs in a process of their own.

The worker writes results into documents through a ``Rooms`` of its own: persisted to the
document log and fanned out through Redis to the servers holding the room. Without Redis the
servers' live rooms would not see results or progress until they unload, so the worker
refuses to start (``flowai serve`` then runs jobs itself). SIGTERM or
SIGINT stops it gracefully: running jobs get ``FLOWAI_JOB_SHUTDOWN_GRACE_S`` to finish, then
are interrupted and retried by another worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from contextlib import AsyncExitStack

from server.cli.data_dir import Needs
from server.cli.options import with_default, with_setting
from server.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser("worker", help="run AI and render jobs (needs FLOWAI_REDIS_URL)")
    worker.add_argument(
        "--queue",
        action="append",
        default=None,
        help=with_default("only this queue; repeat for several", "every queue"),
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=with_setting("jobs run at once", "job_concurrency"),
    )
    worker.set_defaults(run=_worker, needs=_needs, refuse=_refuse)


def _needs(settings: Settings) -> Needs:
    # Local media links are signed with a key derived from the token secret.
    return Needs(database=True, jwt_secret=not settings.media_s3_bucket)


def _refuse(settings: Settings) -> str | None:
    return None if settings.redis_url else NO_REDIS


NO_REDIS = (
    "FLOWAI_REDIS_URL is not set. A worker delivers job results and progress "
    "to the server's live documents through Redis; without it collaborators would not see "
    "them until the document is closed. Set FLOWAI_REDIS_URL (the same on the server and "
    "every worker), or run no worker: a server without Redis runs jobs itself."
)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from server.logging_setup import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    if args.concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": max(1, args.concurrency)})
    asyncio.run(run_worker(settings, queues=args.queue))
    return 0


async def run_worker(settings: Settings, *, queues: list[str] | None = None) -> None:
    from billing.service import CreditService
    from persistence.ledger_pg import PgLedgerStore
    from server.composition.ai import build_ai_services
    from server.composition.collaboration import build_collaboration
    from server.composition.render import build_render_service

    async with AsyncExitStack() as stack:
        collab = await build_collaboration(settings, stack, pool_min=1)
        dsn, db, rooms = collab.dsn, collab.db, collab.rooms
        render = build_render_service(settings)
        ai = await build_ai_services(
            settings,
            dsn,
            db,
            rooms,
            stack,
            credits=CreditService(PgLedgerStore(db)),
            run_workers=False,
            kinds=[render.job_kind()],
        )
        task = asyncio.create_task(ai.queue.run_worker(queues=queues, name="worker"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        log.info("worker started", extra={"queues": queues or "all"})
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("worker stopped")

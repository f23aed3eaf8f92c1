"""``flowai worker``: run AI and render jobs in a process of their own.

The worker writes results into documents through a ``Rooms`` of its own (persisted to the
document log; with Redis configured, fanned out to the servers holding the room). SIGTERM or
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

from server.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser("worker", help="run AI and render jobs")
    worker.add_argument("--queue", action="append", default=None, help="only these queues")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs run at once")
    worker.set_defaults(run=_worker)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from server.logging_setup import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    if args.concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": max(1, args.concurrency)})
    asyncio.run(run_worker(settings, queues=args.queue))
    return 0


async def run_worker(settings: Settings, *, queues: list[str] | None = None) -> None:
    import anyio

    from crdt.rooms import Rooms
    from persistence.db import Database
    from persistence.documents import PgDocumentStore
    from persistence.embedded import start_embedded_postgres
    from persistence.settled import SettledWork
    from persistence.versions import PgVersions
    from server.ai_services import build_ai_services
    from server.render_services import build_render_service

    async with AsyncExitStack() as stack:
        dsn = settings.database_url
        if dsn is None:
            dsn = await anyio.to_thread.run_sync(start_embedded_postgres, settings.data_dir)
        db = await Database.connect(dsn, min_size=1, max_size=settings.db_pool_max)
        stack.push_async_callback(db.close)
        await db.migrate()
        versions = PgVersions(db)
        hooks = SettledWork(db, versions, auto_version_interval_s=settings.auto_version_interval_s)
        fanout = None
        if settings.redis_url:
            from server.fanout_redis import RedisFanout

            fanout = RedisFanout(
                settings.redis_url,
                retention_s=settings.fanout_retention_s,
                heartbeat_s=settings.fanout_heartbeat_s,
            )
            await fanout.start()
            stack.push_async_callback(fanout.stop)
        rooms = Rooms(PgDocumentStore(db), settings.room_settings(), hooks, fanout)
        stack.push_async_callback(rooms.close)
        render = build_render_service(settings)
        ai = await build_ai_services(
            settings, dsn, db, rooms, stack, run_workers=False, kinds=[render.job_kind()]
        )
        task = asyncio.create_task(ai.queue.run_worker(queues=queues, name="worker"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        log.info("worker started", extra={"queues": queues or "all"})
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("worker stopped")

"""The collaboration stack shared by ``flowai serve`` and ``flowai worker``: the database
(embedded when unconfigured, migrated), the document store, versions, the project directory,
the Redis fan-out when configured, and the room registry. Both processes edit live documents
through these rooms; only a server's rooms admit joins (``serve_joins``), so only they keep
member lists."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio

from crdt.live.registry import Rooms
from crdt.ports import DocumentStore, RoomMetrics
from persistence.db import Database
from persistence.documents import PgDocumentStore, merge_in_thread
from persistence.embedded import start_embedded_postgres
from persistence.first_join import PgFirstJoinReader
from persistence.merge_process import MergeProcess
from persistence.projects import ProjectDirectory
from persistence.projects_pg import PgProjectDirectory
from persistence.settled import SettledWork
from persistence.versions import PgVersions
from server.fanout_redis import RedisFanout
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class Collaboration:
    dsn: str
    db: Database
    store: DocumentStore
    versions: PgVersions
    directory: ProjectDirectory
    fanout: RedisFanout | None
    rooms: Rooms


async def build_collaboration(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    metrics: RoomMetrics | None = None,
    pool_min: int | None = None,
    serve_joins: bool = False,
) -> Collaboration:
    dsn = settings.database_url
    if dsn is None:
        # Same code path as an external server, only the DSN differs.
        dsn = await anyio.to_thread.run_sync(start_embedded_postgres, settings.data_dir)
    db = await Database.connect(
        dsn,
        min_size=settings.db_pool_min if pool_min is None else pool_min,
        max_size=settings.db_pool_max,
    )
    stack.push_async_callback(db.close)
    await db.migrate()
    merge = merge_in_thread
    if settings.compact_in_process:
        worker = MergeProcess()
        worker.start()
        stack.callback(worker.close)  # after the rooms' last compactions (registered before)
        merge = worker.merge
    store = PgDocumentStore(db, merge=merge)
    versions = PgVersions(db)
    hooks = SettledWork(db, versions, auto_version_interval_s=settings.auto_version_interval_s)
    fanout = None
    if settings.redis_url:
        fanout = RedisFanout(
            settings.redis_url,
            retention_s=settings.fanout_retention_s,
            heartbeat_s=settings.fanout_heartbeat_s,
        )
        await fanout.start()
        stack.push_async_callback(fanout.stop)
    directory = PgProjectDirectory(db)
    first_join = None
    if serve_joins:
        first_join = PgFirstJoinReader(db)
        await first_join.keep_prepared()
    rooms = Rooms(
        store,
        settings.room_settings(),
        hooks,
        fanout,
        metrics,
        membership=directory if serve_joins else None,
        first_join=first_join,
    )
    # Registered after the pool and the fan-out so it runs first on the way out: rooms flush
    # into them.
    stack.push_async_callback(rooms.close)
    return Collaboration(dsn, db, store, versions, directory, fanout, rooms)

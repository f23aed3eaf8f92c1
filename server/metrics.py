"""Prometheus metrics at ``/metrics``, one registry per app (so several apps can share a
process, as the tests do). With ``--workers N`` each process keeps its own figures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from persistence.db import Database
from server.wire_metrics import WireCollector, WireFigures

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """Implements ``crdt.ports.RoomMetrics`` and holds the server's own instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rooms = Gauge("flowai_rooms", "Rooms loaded in this process", registry=r)
        self.connections = Gauge("flowai_connections", "Open websocket connections", registry=r)
        # Per-frame figures: plain integers on the hot path (see ``server.wire_metrics``).
        self.wire = WireFigures(_LATENCY_BUCKETS)
        r.register(WireCollector(self.wire))
        self.closes = Counter(
            "flowai_ws_closes", "Connections closed by the server, by code", ["code"], registry=r
        )
        self.persist_batch = Histogram(
            "flowai_persist_batch_updates",
            "Updates stored per group commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.persist_lag = Histogram(
            "flowai_persist_lag_seconds",
            "From an update's acceptance to its commit (oldest in the batch)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compactions = Counter(
            "flowai_compactions", "Log compactions, by outcome", ["outcome"], registry=r
        )
        self.slow_consumers = Counter(
            "flowai_slow_consumers",
            "Connections closed for overflowing their send queue",
            registry=r,
        )

        self.jobs = Gauge(
            "flowai_jobs",
            "Jobs waiting or running (the queue's depth), by status",
            ["status"],
            registry=r,
        )
        self.jobs_finished = Gauge(
            "flowai_jobs_finished_last_hour",
            "Jobs that ended in the last hour, by outcome",
            ["status"],
            registry=r,
        )
        self.credits_held = Gauge(
            "flowai_credits_held", "Credits held by pending jobs, all users", registry=r
        )
        self.credits_balance = Gauge(
            "flowai_credits_balance", "Credits owned by all users", registry=r
        )
        self.credits_captured = Gauge(
            "flowai_credits_captured_last_hour", "Credits captured in the last hour", registry=r
        )

    def track(self, gauge: Gauge, read: Callable[[], float]) -> None:
        gauge.set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- crdt.ports.RoomMetrics ------------------------------------------------------------

    def committed(self, updates: int, oldest_wait_s: float) -> None:
        self.persist_batch.observe(updates)
        self.persist_lag.observe(oldest_wait_s)

    def compacted(self, ok: bool) -> None:
        self.compactions.labels("ok" if ok else "failed").inc()

    def slow_consumer(self) -> None:
        self.slow_consumers.inc()


async def sample_database(metrics: Metrics, db: Database, every_s: float) -> None:
    """Refresh the gauges that live in the database (jobs, credits) every ``every_s``.

    Each query reads an index or a bounded window, never a whole history; every instance
    reports the same cluster-wide figures.
    """
    while True:
        try:
            async with db.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT status, count(*) AS n FROM jobs "
                    "WHERE status IN ('queued', 'running') GROUP BY status"
                )
                depth = {r["status"]: r["n"] for r in rows}
                for status in ("queued", "running"):
                    metrics.jobs.labels(status).set(depth.get(status, 0))
                rows = await conn.fetch(
                    "SELECT status, count(*) AS n FROM jobs WHERE updated_at > now() - "
                    "interval '1 hour' AND status IN ('succeeded', 'failed', 'cancelled') "
                    "GROUP BY status"
                )
                done = {r["status"]: r["n"] for r in rows}
                for status in ("succeeded", "failed", "cancelled"):
                    metrics.jobs_finished.labels(status).set(done.get(status, 0))
                totals = await conn.fetchrow(
                    "SELECT coalesce(sum(held), 0) AS held, coalesce(sum(balance), 0) AS balance "
                    "FROM user_credits"
                )
                assert totals is not None
                metrics.credits_held.set(totals["held"])
                metrics.credits_balance.set(totals["balance"])
                captured = await conn.fetchval(
                    "SELECT coalesce(sum(amount), 0) FROM credit_transactions "
                    "WHERE kind = 'capture' AND created_at > now() - interval '1 hour'"
                )
                metrics.credits_captured.set(captured)
        except Exception:  # the database is unreachable: keep the last figures
            log.warning("could not sample job and credit metrics", exc_info=True)
        await asyncio.sleep(every_s)

"""Prometheus metrics at ``/metrics``, one registry per app (so several apps can share a
process, as the tests do). With ``--workers N`` each process keeps its own figures."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """Implements ``crdt.ports.RoomMetrics`` and holds the server's own instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rooms = Gauge("flowai_rooms", "Rooms loaded in this process", registry=r)
        self.connections = Gauge("flowai_connections", "Open websocket connections", registry=r)
        self.messages_in = Counter("flowai_ws_messages_in", "Frames received", registry=r)
        self.bytes_in = Counter("flowai_ws_bytes_in", "Bytes received", registry=r)
        self.messages_out = Counter("flowai_ws_messages_out", "Frames sent", registry=r)
        self.bytes_out = Counter("flowai_ws_bytes_out", "Bytes sent", registry=r)
        self.apply_seconds = Histogram(
            "flowai_frame_handle_seconds",
            "Time to decode, apply and fan out one received frame",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
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

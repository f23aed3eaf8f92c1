"""Per-frame figures of the websocket connections, kept as plain integers.

prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock and go through
several calls each: a few microseconds, paid for every frame in and out. A broadcast to 50
clients paid it 100 times and a join about a dozen times. Here the hot path adds to integers
(the event loop is the only writer) and the figures are read when ``/metrics`` is scraped, by
a collector that exposes them as the same counters and histogram.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString


class WireFigures:
    """Frames and bytes in and out, and how long handling each received frame took."""

    __slots__ = (
        "_bucket_counts",
        "bytes_in",
        "bytes_out",
        "handle_buckets",
        "handle_sum_s",
        "messages_in",
        "messages_out",
    )

    def __init__(self, handle_buckets: Sequence[float]) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.handle_buckets = tuple(handle_buckets)
        # One count per bucket bound and one above the last (+Inf), not cumulative.
        self._bucket_counts = [0] * (len(self.handle_buckets) + 1)
        self.handle_sum_s = 0.0

    def handled(self, seconds: float) -> None:
        self._bucket_counts[bisect_left(self.handle_buckets, seconds)] += 1
        self.handle_sum_s += seconds

    def handle_histogram(self) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as Prometheus exposes them."""
        bounds = (*self.handle_buckets, INF)
        return list(zip(map(floatToGoString, bounds), accumulate(self._bucket_counts), strict=True))


class WireCollector(Collector):
    """Exposes ``WireFigures`` under the names the instruments had."""

    def __init__(self, figures: WireFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self._figures
        yield CounterMetricFamily("flowai_ws_messages_in", "Frames received", f.messages_in)
        yield CounterMetricFamily("flowai_ws_bytes_in", "Bytes received", f.bytes_in)
        yield CounterMetricFamily("flowai_ws_messages_out", "Frames sent", f.messages_out)
        yield CounterMetricFamily("flowai_ws_bytes_out", "Bytes sent", f.bytes_out)
        yield HistogramMetricFamily(
            "flowai_frame_handle_seconds",
            "Time to decode, apply and fan out one received frame",
            buckets=f.handle_histogram(),
            sum_value=f.handle_sum_s,
        )

"""The per-frame figures read out as prometheus_client's own instruments would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from server.wire_metrics import WireCollector, WireFigures

BUCKETS = (0.0005, 0.001, 0.0025, 0.01, 1)
SECONDS = [0.0001, 0.0005, 0.0007, 0.001, 0.002, 0.5, 1.0, 7.5]


def _samples(registry: CollectorRegistry, prefix: str) -> list[str]:
    return [
        line for line in generate_latest(registry).decode().splitlines() if line.startswith(prefix)
    ]


def test_the_histogram_matches_prometheus_clients() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    figures = WireFigures(BUCKETS)
    ours.register(WireCollector(figures))
    histogram = Histogram("flowai_frame_handle_seconds", "h", buckets=BUCKETS, registry=theirs)
    for seconds in SECONDS:
        figures.handled(seconds)
        histogram.observe(seconds)
    prefix = "flowai_frame_handle_seconds_"
    wanted = [s for s in _samples(theirs, prefix) if not s.startswith(prefix + "created")]
    assert _samples(ours, prefix) == wanted


def test_the_counters_read_what_was_added() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    figures = WireFigures(BUCKETS)
    ours.register(WireCollector(figures))
    counters = {
        name: Counter(f"flowai_ws_{name}", "c", registry=theirs)
        for name in ("messages_in", "bytes_in", "messages_out", "bytes_out")
    }
    for name, amount in (
        ("messages_in", 3),
        ("bytes_in", 120),
        ("messages_out", 5),
        ("bytes_out", 9),
    ):
        setattr(figures, name, getattr(figures, name) + amount)
        counters[name].inc(amount)
    for name in counters:
        prefix = f"flowai_ws_{name}_total"
        assert _samples(ours, prefix) == _samples(theirs, prefix), name

"""How the Node load generators' results are combined: shares of clients, storm figures over
several generator processes, latency percentiles from merged histograms."""

from __future__ import annotations

import math

from bench.fanout_bench import hist_percentile
from bench.node_gen import split
from bench.storm_bench import _median, _storm


def test_clients_are_dealt_round_robin_and_no_share_is_empty() -> None:
    assert split(list(range(5)), 2) == [[0, 2, 4], [1, 3]]
    assert split([1, 2], 4) == [[1], [2]]
    assert split([7], 1) == [[7]]


def _result(times: list[float | None], cpu_ms: float = 10.0) -> dict[str, object]:
    synced = [t for t in times if t is not None]
    return {
        "synced": len(synced),
        "all_synced_ms": max(synced) if len(synced) == len(times) else None,
        "synced_ms": times,
        "cpu_ms": cpu_ms,
        "open_loop_ms": 5.0,
        "system_cpu_ms": 2.0,
        "errors": [] if len(synced) == len(times) else ["client 1: HTTP 403"],
    }


def test_a_storm_over_two_generators_ends_with_the_slowest_client_of_either() -> None:
    storm = _storm([_result([10.0, 30.0]), _result([20.0, 250.0], cpu_ms=15.0)], 4, 0.2, 400.0)
    assert storm.synced == 4
    assert storm.all_synced_s == 0.25
    assert storm.generator_cpu_s == 0.025
    assert storm.p50_ms == 20.0
    assert storm.rss_kb_per_conn == 100.0


def test_a_storm_with_a_client_not_synced_has_no_all_synced_time() -> None:
    storm = _storm([_result([10.0, None]), _result([20.0, 30.0])], 4, 0.2, math.nan)
    assert storm.synced == 3
    assert math.isnan(storm.all_synced_s)
    assert storm.errors == ["client 1: HTTP 403"]


def test_a_failed_storm_counts_as_the_slowest_in_the_median() -> None:
    assert _median([0.3, math.nan, 0.2]) == 0.3
    assert _median([math.nan, math.nan, 0.2]) == math.inf


def test_histogram_percentiles_are_nearest_rank_on_bucket_upper_edges() -> None:
    # 0.1 ms buckets: 98 deliveries at 1.0-1.1 ms, one at 5.0-5.1 ms, one at 20.0-20.1 ms.
    hist = {10: 98, 50: 1, 200: 1}
    assert math.isclose(hist_percentile(hist, 0.1, 0.50), 1.1)
    assert math.isclose(hist_percentile(hist, 0.1, 0.99), 5.1)
    assert math.isclose(hist_percentile(hist, 0.1, 1.0), 20.1)
    assert math.isnan(hist_percentile({}, 0.1, 0.5))

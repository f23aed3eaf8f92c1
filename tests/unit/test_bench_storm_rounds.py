"""The sync benchmark's storm figures: the median of several rounds, failures counted last."""

from __future__ import annotations

import math

import pytest

from bench.loadgen import StormResult
from bench.sync_bench import ServerFigures, StormRound


def _storm(total_s: float, synced: int = 500) -> StormResult:
    return StormResult(500, synced, total_s, total_s * 900, total_s * 990, [])


def _round(cold_s: float, live_s: float, cpu_s: float = 0.1) -> StormRound:
    return StormRound(_storm(cold_s), _storm(live_s), cpu_s, 0.2)


def test_the_median_round_is_reported_for_cold_and_live_storms_separately() -> None:
    figures = ServerFigures(
        storm_rounds=[
            _round(0.30, 0.15, cpu_s=0.3),
            _round(0.20, 0.25, cpu_s=0.2),
            _round(0.25, 0.18, cpu_s=0.25),
        ]
    )
    assert figures.storm_round().cold.total_s == 0.25
    assert figures.storm_round().server_cpu_s == 0.25  # the figures of that same round
    assert figures.storm_round(live=True).live.total_s == 0.18
    assert figures.storm_times() == [0.20, 0.25, 0.30]


def test_a_storm_that_did_not_sync_everyone_counts_as_the_slowest() -> None:
    failed = StormRound(_storm(math.nan, synced=499), _storm(0.2), 0.1, 0.2)
    figures = ServerFigures(storm_rounds=[_round(0.2, 0.2), failed, _round(0.3, 0.2)])
    assert figures.storm_round().cold.total_s == 0.3
    assert figures.storm_times()[-1] == math.inf
    # Of an even count, the slower of the two in the middle: a failure cannot hide behind it.
    two = ServerFigures(storm_rounds=[_round(0.2, 0.2), failed])
    assert math.isnan(two.storm_round().cold.total_s)


def test_no_rounds_means_no_storm_figures() -> None:
    with pytest.raises(LookupError):
        ServerFigures().storm_round()

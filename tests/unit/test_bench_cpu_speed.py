"""The CPU-speed benchmark's report: multiples of the fastest run, and the share of slow ones."""

from __future__ import annotations

from bench.cpu_speed import report, timed_runs


def test_runs_are_reported_as_multiples_of_the_fastest_of_all() -> None:
    text = report({0.0: [0.002, 0.002, 0.004, 0.0022], 0.5: [0.0038, 0.004]}, cpu=1)
    assert "one piece of work takes 2.00 ms of CPU at the fastest" in text
    assert "| 0 ms | 4 | 1.00 | 1.10 | 2.00 | 25% |" in text
    assert "| 500 ms | 2 | 1.90 | 2.00 | 2.00 | 100% |" in text
    assert "- 0 ms pauses: 1.0x: 2, 1.1x: 1, 2.0x: 1" in text


def test_each_run_is_timed() -> None:
    times = timed_runs(0.0, 3)
    assert len(times) == 3 and all(t > 0 for t in times)

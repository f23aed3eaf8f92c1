"""The join-storm report's comparison of ours with a baseline build (``--baseline``)."""

from __future__ import annotations

from bench.storm_bench import BASELINE, Storm, _ratio_lines


def _storm(synced_s: float, cpu_s: float) -> Storm:
    return Storm(500, 500, synced_s, 1.0, 2.0, cpu_s, 0.03, 0.02, 0.01)


def test_ours_against_a_baseline_pairs_the_rounds_cpu() -> None:
    storms = {
        "ours": [_storm(0.08, 0.06), _storm(0.09, 0.09), _storm(0.07, 0.05)],
        BASELINE: [_storm(0.10, 0.08), _storm(0.10, 0.10), _storm(0.09, 0.10)],
    }
    (line,) = _ratio_lines(storms, "cold")
    # Medians 0.08 / 0.10; round by round 0.75, 0.90 and 0.50, whose median is 0.75.
    assert "ours / baseline, median all-synced times: **0.80**" in line
    assert "median of the round-by-round ratios: **0.75** (0.75, 0.90, 0.50)" in line


def test_the_reference_ratio_comes_first_and_the_baseline_only_when_run() -> None:
    ours = [_storm(0.08, 0.06)]
    with_reference = {"ours": ours, "reference": [_storm(0.10, 0.1)]}
    (line,) = _ratio_lines(with_reference, "warm")
    assert "ours / reference" in line and "**0.80**" in line
    both = {**with_reference, BASELINE: [_storm(0.16, 0.12)]}
    reference, baseline = _ratio_lines(both, "warm")
    assert "ours / reference" in reference
    assert "ours / baseline" in baseline and "**0.50**" in baseline

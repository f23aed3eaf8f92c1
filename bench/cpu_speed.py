"""How steady this machine's CPU speed is: the same small piece of work, timed again and again
after pauses of different lengths.

    python -m bench.cpu_speed            (from the repository root, in the virtualenv)

On a virtual machine a CPU's speed can depend on what else its physical core runs, so the same
work can take a different time from one moment to the next; benchmarks that compare servers
storm by storm must then use enough rounds for each to draw both kinds of moment. For each
pause (``--pauses``), ``--runs`` times: sleep for the pause, then do a fixed piece of work
(dictionary stores and ``str`` calls, about 3 ms at full speed) and take the CPU time it used.
Prints the time of each run as a multiple of the fastest of all, in tenths, and how many runs
fell in each tenth. Pinned to ``--cpu`` (default: the last one, where the benchmarks put the
server under test). Writes ``bench/results/cpu_speed.md``. Bounded: ``runs`` x (pause + work)
per pause.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cpu_speed.md"
WORK_STEPS = 30_000


def work() -> int:
    """A fixed piece of interpreter work, like a server's: dictionary stores, small strings."""
    table: dict[int, str] = {}
    for i in range(WORK_STEPS):
        table[i & 1023] = str(i)
    return len(table)


def timed_runs(pause_s: float, runs: int) -> list[float]:
    """CPU seconds of ``runs`` pieces of work, each after a sleep of ``pause_s``."""
    times = []
    for _ in range(runs):
        if pause_s:
            time.sleep(pause_s)
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(by_pause: dict[float, list[float]], cpu: int) -> str:
    fastest = min(min(times) for times in by_pause.values())
    lines = [
        "# CPU speed from moment to moment",
        "",
        f"`python -m bench.cpu_speed` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pinned to CPU {cpu}; "
        f"one piece of work takes {fastest * 1000:.2f} ms of CPU at the fastest.",
        "",
        "Each run: sleep for the pause, then the same work; its CPU time as a multiple of the "
        "fastest run of all.",
        "",
        "| pause before each run | runs | p10 | p50 | p90 | share of runs at 1.5x or slower |",
        "|---|---|---|---|---|---|",
    ]
    for pause, times in by_pause.items():
        slow = sum(t / fastest >= 1.5 for t in times) / len(times)
        lines.append(
            f"| {pause * 1000:.0f} ms | {len(times)} | {_quantile(times, 0.1) / fastest:.2f} | "
            f"{_quantile(times, 0.5) / fastest:.2f} | {_quantile(times, 0.9) / fastest:.2f} | "
            f"{slow:.0%} |"
        )
    lines += ["", "Runs by multiple of the fastest, in tenths:", ""]
    for pause, times in by_pause.items():
        counts = collections.Counter(round(t / fastest, 1) for t in times)
        spread = ", ".join(f"{k:.1f}x: {n}" for k, n in sorted(counts.items()))
        lines.append(f"- {pause * 1000:.0f} ms pauses: {spread}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pauses", default="0,10,150,500", help="milliseconds, comma-separated")
    parser.add_argument("--runs", type=int, default=80)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if args.cpu is None else args.cpu
    os.sched_setaffinity(0, {cpu})
    pauses = [float(p) / 1000 for p in args.pauses.split(",") if p.strip()]
    by_pause = {pause: timed_runs(pause, args.runs) for pause in pauses}
    text = report(by_pause, cpu)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fan-out: one writer at 10 edits/s to 1,000, 1,500 and 3,000 observers of one room; latency
from the writer's send to each observer's receive, for ours, the reference and the bare relay.

    python -m bench.fanout_bench          (from the repository root, in the virtualenv)

The servers are ``bench.sync_bench``'s, all started at once and kept running, pinned to the
CPUs the load generator does not use. The writer and the observers are ``bench/node/fanout.mjs``
(``--generators`` Node processes pinned to the first CPU; the writer lives in the first): each
observer connects and syncs before the run, then every edit the writer sends carries its send
time in its content, so each observer times it from the bytes it receives. For each point
(``--observers``), the servers take turns (ours, reference, bare), each on a room of its own
(ours: a new project, one member and token per observer and one for the writer). A point
lasts ``--duration`` (10) s of writing plus ``--drain`` (2) s.

Reported per point: p50/p99/max over every delivery to every observer, the median and the worst
of the observers' own p99s, delivered over (edits sent x observers), the server's CPU and the
generator's CPU in % of one core over the window. A generator near 100 % is the limit, not the
server: then the figures say nothing about the server, and the report says so. Writes
``bench/results/fanout.md``. Bounded: about three minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import node_gen, procstat
from bench.storm_bench import OURS_ENV, raise_open_files
from bench.sync_bench import (
    LABELS,
    SERVERS,
    STARTERS,
    Server,
    _versions,
    log,
    pin_servers,
    split_cpus,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fanout.md"
# Above this share of one core the generator, not the server, may be what limits a point.
GENERATOR_BUSY_PCT = 80.0


@dataclass
class Point:
    server: str
    observers: int
    connected: int = 0
    sent: int = 0
    received: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    observer_p99_median_ms: float = math.nan
    observer_p99_worst_ms: float = math.nan
    server_cpu_pct: float = math.nan
    generator_cpu_pct: float = math.nan
    errors: list[str] = field(default_factory=list)

    @property
    def delivered_ratio(self) -> float:
        expected = self.sent * self.connected
        return self.received / expected if expected else math.nan


def hist_percentile(hist: dict[int, int], bucket_ms: float, q: float) -> float:
    """Nearest-rank percentile of a histogram of ``bucket_ms`` buckets (upper edges)."""
    total = sum(hist.values())
    if not total:
        return math.nan
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return (bucket + 1) * bucket_ms
    return math.nan


def _merge(results: Sequence[dict[str, Any]]) -> tuple[dict[int, int], float]:
    merged: dict[int, int] = {}
    bucket_ms = float(results[0]["bucket_ms"])
    for result in results:
        for bucket, count in result["hist"].items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + int(count)
    return merged, bucket_ms


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan


async def run_point(
    server: Server, observers: int, gens: Sequence[node_gen.Generator], args: argparse.Namespace
) -> Point:
    url_for = await server.new_room(observers + 1)
    shares = node_gen.split([url_for(i + 1) for i in range(observers)], len(gens))
    inputs: list[dict[str, Any]] = [
        {
            "writer_url": url_for(0) if k == 0 else None,
            "observer_urls": share,
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "drain_s": args.drain,
            "client": args.client,
            "deflate": not args.no_deflate,
        }
        for k, share in enumerate(shares)
    ]
    used = gens[: len(inputs)]
    point = Point(server.name, observers)
    ready = await node_gen.hand_out(used, inputs)
    point.connected = sum(int(r["ready"]) for r in ready)
    point.errors += [e for r in ready for e in r["errors"]][:5]
    await asyncio.sleep(1)  # greetings settle
    cpu_before, wall_before = procstat.cpu_s(server.pid), time.monotonic()
    await node_gen.say_all(used, "go")
    results = await node_gen.read_all(used, args.duration + args.drain + 60)
    wall = time.monotonic() - wall_before
    point.server_cpu_pct = 100 * (procstat.cpu_s(server.pid) - cpu_before) / wall
    await node_gen.say_all(used, "close")
    await node_gen.read_all(used, 30)
    hist, bucket_ms = _merge(results)
    observer_p99 = [v for r in results for v in r["per_observer_p99_ms"] if v is not None]
    point.sent = sum(int(r["sent"]) for r in results)
    point.received = sum(int(r["received"]) for r in results)
    point.p50_ms = hist_percentile(hist, bucket_ms, 0.50)
    point.p99_ms = hist_percentile(hist, bucket_ms, 0.99)
    point.max_ms = (max(hist) + 1) * bucket_ms if hist else math.nan
    point.observer_p99_median_ms = _median(observer_p99)
    point.observer_p99_worst_ms = max(observer_p99, default=math.nan)
    point.generator_cpu_pct = 100 * sum(r["cpu_ms"] for r in results) / 1000 / wall
    point.errors += [e for r in results for e in r["errors"]][:5]
    return point


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _argv() -> str:
    """The options this run was given, for the report's first line."""
    return "".join(f" {a}" for a in sys.argv[1:])


def report(points: list[Point], args: argparse.Namespace, loads: dict[int, str]) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Fan-out",
        "",
        f"`python -m bench.fanout_bench{_argv()}` on {when}: {os.cpu_count()} CPUs, {_versions()}; "
        f"{args.placement}; {args.generators} generator process(es), client {args.client}; "
        f"one writer at {args.rate:g} edits/s for {args.duration:g} s (+ {args.drain:g} s "
        f"drain) per point; {args.limits}. Load average (1/5/15 min) {args.load_before} "
        f"before, {procstat.load_average()} after.",
        "",
        "Latency: the writer's send to an observer's receive, over every delivery (p50, p99, "
        "max) and per observer (the median and the worst of their p99s). CPU in % of one "
        f"core over the window; a generator above {GENERATOR_BUSY_PCT:g} % is marked: it may "
        "be what limits that point.",
        "",
        "| observers | server | connected | delivered (%) | p50 (ms) | p99 (ms) | max (ms) "
        "| observer p99 median / worst (ms) | server CPU (%) | generator CPU (%) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        busy = " (busy)" if p.generator_cpu_pct > GENERATOR_BUSY_PCT else ""
        lines.append(
            f"| {p.observers:,} | {LABELS[p.server]} | {p.connected:,} "
            f"| {_fmt(100 * p.delivered_ratio, 2)} | {_fmt(p.p50_ms)} | {_fmt(p.p99_ms)} "
            f"| {_fmt(p.max_ms)} | {_fmt(p.observer_p99_median_ms)} / "
            f"{_fmt(p.observer_p99_worst_ms)} | {_fmt(p.server_cpu_pct, 0)} "
            f"| {_fmt(p.generator_cpu_pct, 0)}{busy} | {loads.get(id(p), '')} |"
        )
    lines.append("")
    for observers in args.observers:
        by = {p.server: p for p in points if p.observers == observers}
        ours, ref = by.get("ours"), by.get("reference")
        if ours and ref and ref.p99_ms:
            lines.append(
                f"- {observers:,} observers: p99 ours / reference "
                f"**{ours.p99_ms / ref.p99_ms:.2f}**, p50 {ours.p50_ms / ref.p50_ms:.2f}"
            )
    errors = [f"{p.server} {p.observers}: {e}" for p in points for e in p.errors[:2]]
    if errors:
        lines += ["", "Errors (first of each point):", "", *(f"- {e}" for e in errors)]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> int:
    args.load_before = procstat.load_average()
    split = None if args.no_pin else split_cpus()
    cpus = None
    args.placement = "not pinned"
    if split is not None:
        cpus, server_cpus = split
        pin_servers(server_cpus)
        os.sched_setaffinity(0, cpus)
        args.placement = (
            f"load generator on CPU {sorted(cpus)}, server under test on CPU {sorted(server_cpus)}"
        )
    args.limits = raise_open_files(max(args.observers) + 1000)
    points: list[Point] = []
    loads: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="flowai-fanout-") as tmp:
        try:
            async with contextlib.AsyncExitStack() as stack:
                gens = await node_gen.start("fanout.mjs", args.generators, cpus=cpus)
                stack.push_async_callback(node_gen.stop_all, gens)
                servers: dict[str, Server] = {}
                for name in args.servers:
                    log(f"starting {LABELS[name]}")
                    servers[name] = await stack.enter_async_context(
                        STARTERS[name](Path(tmp), OURS_ENV)
                    )
                for observers in args.observers:
                    for name, server in servers.items():
                        point = await run_point(server, observers, gens, args)
                        points.append(point)
                        loads[id(point)] = procstat.load_average()
                        log(
                            f"{name} {observers}: {point.connected} connected, delivered "
                            f"{point.delivered_ratio:.2%}, p50 {point.p50_ms:.1f} p99 "
                            f"{point.p99_ms:.1f} max {point.max_ms:.1f} ms, server CPU "
                            f"{point.server_cpu_pct:.0f}%, generator CPU "
                            f"{point.generator_cpu_pct:.0f}% {'; '.join(point.errors[:2])}"
                        )
                        await asyncio.sleep(1)
        except Exception as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            for log_file in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log_file.name}", file=sys.stderr)
                print(log_file.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    text = report(points, args, loads)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"written to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="bench.fanout_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        type=lambda text: [s for s in text.split(",") if s],
    )
    parser.add_argument(
        "--observers", type=int, nargs="+", default=[1000, 1500, 3000], help="points to run"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="writer's edits per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writing")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait after")
    parser.add_argument("--generators", type=int, default=1)
    parser.add_argument("--client", choices=("raw", "ws"), default="raw")
    parser.add_argument("--no-deflate", action="store_true")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if min(args.observers) < 1 or args.generators < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("observers, generators, rate and duration must be positive")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

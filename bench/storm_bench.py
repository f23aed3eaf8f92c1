"""Join storms: ours against the reference server and the bare relay, with per-client members
and tokens and with one shared token, at 500 and 2,000 clients.

    python -m bench.storm_bench           (from the repository root, in the virtualenv)

The servers are ``bench.sync_bench``'s (ours: ``flowai serve`` on a fresh PostgreSQL database;
reference: ``@y/websocket-server``; bare: ``bench.bare_relay``), all started at once and kept
running, each pinned to the CPUs the load generator does not use. The clients (y-websocket
framing: sync step 1 on open, the server's step 1 answered, synced on the first step 2) live in
``--generators`` load generator processes pinned to the first CPU, kept up for the whole run,
given their urls before each storm, then told to go at once. ``--client native`` (default:
``bench/native/storm.c``, compiled on first use) costs a quarter to a half of the CPU per
client that any server spends per join, so the servers set the pace; ``--client raw`` (Node,
``bench/node/rawws.mjs``, a lean RFC 6455 client on a bare TCP socket) and ``--client ws``
(Node, the ``ws`` library) cost about as much as the servers, enough to set the pace
themselves when the servers are fast (one shared token).

Before the 500-client parts, ``--warmup`` (10) unmeasured storms per server, on rooms of their
own: servers are measured warm, as they run in production (the reference's JIT is not warm
after one storm).

Parts (``--parts``):

- own: ``--clients`` (500) clients, each its own member and token, storm a room not in memory
  (ours: made earlier and unloaded since, so the storm loads it from the database; the others:
  a room name not used before), then, as soon as they have closed, the same storm on the room
  the first left loaded (warm; for ours the tokens are cached by then). ``--rounds`` (15)
  rounds, the servers taking turns round by round (ours, reference, bare, next round), so a
  slow spell of the shared machine falls on all three. Fifteen, not the five a median needs:
  on this kind of virtual machine a CPU runs at one of two speeds, the slower taking 1.6-2
  times the CPU time for the same work (``python -m bench.cpu_speed``; inside our server every
  function alike), and the speed changes from one storm to the next, so with fewer rounds the
  median says more about which server drew more slow storms;
- shared: the same with one token for every client of a room (one user's sockets; ours runs
  with ``FLOWAI_USER_CONNECTIONS_MAX`` raised so that it admits them);
- big: ``--big-clients`` (2,000) clients, own members and tokens, ``--big-rounds`` (3) cold
  storms per server, held open for two seconds to read the server's RSS: the growth over the
  storm divided by the connections is the memory per connection (a storm's peak, not the idle
  figure ``bench.sync_bench`` gives).

``--baseline PATH`` adds a fourth server: ours as the checkout at PATH has it (another commit's
tree; ``flowai serve`` with that tree first on ``PYTHONPATH``), taking its turn after ours in
every round. The report then also gives ours / baseline: the ratio of the median all-synced
times and the median of the round-by-round ratios of server CPU, which pairs storms run
seconds apart and so varies less with the machine's slow spells than either median alone.

For each storm: all-synced time (from "go" to the last client's step 2), the p99 of the
per-client times, the CPU time the server used meanwhile, and the CPU time the load
generator used (its own, from ``getrusage`` or ``process.cpuUsage``), so the report shows
whether the generator or the server set the pace. Writes ``bench/results/storm.md``.
Bounded: about five minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import native_gen, node_gen, procstat
from bench.loadgen import percentile
from bench.sync_bench import (
    COLD_AFTER_S,
    LABELS,
    SERVERS,
    STARTERS,
    STORM_PAUSE_S,
    RoomUrls,
    Server,
    _versions,
    log,
    pin_servers,
    split_cpus,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "storm.md"
PARTS = ("own", "shared", "big")
TARGET_RATIO = 0.9
HOLD_S = 2.0  # big storms: open and idle this long before the server's RSS is read
STORM_TIMEOUT_S = 60.0
# Ours admits this many sockets of one user (the shared-token part needs them all).
OURS_ENV = {"FLOWAI_USER_CONNECTIONS_MAX": "10000"}
BASELINE = "baseline"  # ours as another checkout has it (--baseline)


def _label(name: str) -> str:
    return "ours, baseline (--baseline)" if name == BASELINE else LABELS[name]


async def start_generators(
    client: str, count: int, *, cpus: set[int] | None
) -> list[node_gen.Generator]:
    """``count`` storm generator processes for ``client``: the C program for ``native``, the
    Node script (which picks its client per storm) for ``raw`` and ``ws``."""
    if client == "native":
        return await native_gen.start("storm", count, cpus=cpus)
    return await node_gen.start("storm.mjs", count, cpus=cpus)


def raise_open_files(needed: int) -> str:
    """Lift the soft limit on open files to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft < needed:
        raise RuntimeError(f"open files limit {soft} < {needed} needed; raise ulimit -n")
    return f"open files limit {soft}"


@dataclass
class Storm:
    clients: int
    synced: int
    all_synced_s: float  # NaN unless every client synced
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    generator_cpu_s: float
    generator_system_cpu_s: float  # the kernel's part of it
    open_loop_s: float  # the generator's time just to start every connection
    rss_kb_per_conn: float = math.nan
    errors: list[str] = field(default_factory=list)


async def run_storm(
    server: Server,
    url_for: RoomUrls,
    clients: int,
    gens: Sequence[node_gen.Generator],
    *,
    client: str,
    deflate: bool,
    hold_s: float = 0.0,
) -> Storm:
    urls = [url_for(i) for i in range(clients)]
    inputs = [
        {"urls": share, "timeout_ms": STORM_TIMEOUT_S * 1000, "deflate": deflate, "client": client}
        for share in node_gen.split(urls, len(gens))
    ]
    used = gens[: len(inputs)]
    await node_gen.hand_out(used, inputs)
    rss_before = server.rss_kb()
    cpu_before = procstat.cpu_s(server.pid)
    await node_gen.say_all(used, "go")
    results = await node_gen.read_all(used, STORM_TIMEOUT_S + 10)
    server_cpu_s = procstat.cpu_s(server.pid) - cpu_before
    rss_after = math.nan
    if hold_s:
        await asyncio.sleep(hold_s)
        rss_after = server.rss_kb()
    await node_gen.say_all(used, "close")
    await node_gen.read_all(used, 30)
    return _storm(results, clients, server_cpu_s, rss_after - rss_before)


def _storm(
    results: Sequence[dict[str, Any]], clients: int, server_cpu_s: float, rss_kb: float
) -> Storm:
    times = [t for r in results for t in r["synced_ms"] if t is not None]
    synced = sum(r["synced"] for r in results)
    every = synced == clients and all(r["all_synced_ms"] is not None for r in results)
    return Storm(
        clients=clients,
        synced=synced,
        all_synced_s=max(r["all_synced_ms"] for r in results) / 1000 if every else math.nan,
        p50_ms=percentile(times, 0.50),
        p99_ms=percentile(times, 0.99),
        server_cpu_s=server_cpu_s,
        generator_cpu_s=sum(r["cpu_ms"] for r in results) / 1000,
        generator_system_cpu_s=sum(r.get("system_cpu_ms", math.nan) for r in results) / 1000,
        open_loop_s=max(r["open_loop_ms"] for r in results) / 1000,
        rss_kb_per_conn=rss_kb / synced if synced else math.nan,
        errors=[e for r in results for e in r["errors"]][:10],
    )


# -- the parts -------------------------------------------------------------------------------


@dataclass
class PartFigures:
    """Per server: the storms of every round (a warm storm follows each cold one, if asked)."""

    cold: dict[str, list[Storm]] = field(default_factory=dict)
    warm: dict[str, list[Storm]] = field(default_factory=dict)
    load: tuple[str, str] = ("", "")


_load = procstat.load_average


def _describe(name: str, kind: str, s: Storm) -> str:
    return (
        f"{name} {kind}: {s.synced}/{s.clients} synced in {s.all_synced_s:.3f} s, p99 "
        f"{s.p99_ms:.0f} ms, server CPU {s.server_cpu_s:.3f} s, generator CPU "
        f"{s.generator_cpu_s:.3f} s (open loop {s.open_loop_s:.3f} s)"
        + (f", {s.rss_kb_per_conn:.1f} KB/conn" if not math.isnan(s.rss_kb_per_conn) else "")
        + (f" {'; '.join(s.errors[:2])}" if s.errors else "")
    )


async def run_part(
    servers: dict[str, Server],
    rooms: dict[str, list[RoomUrls]],
    clients: int,
    args: argparse.Namespace,
    *,
    warm: bool,
    hold_s: float = 0.0,
) -> PartFigures:
    figures = PartFigures(load=(_load(), ""))
    for round_ in range(len(next(iter(rooms.values())))):
        for name, server in servers.items():
            url_for = rooms[name][round_]
            kinds = ("cold", "warm") if warm else ("cold",)
            for kind in kinds:
                storm = await run_storm(
                    server,
                    url_for,
                    clients,
                    args.gens,
                    client=args.client,
                    deflate=not args.no_deflate,
                    hold_s=hold_s,
                )
                getattr(figures, kind).setdefault(name, []).append(storm)
                log(f"round {round_ + 1}: " + _describe(name, kind, storm))
            await asyncio.sleep(STORM_PAUSE_S)
    figures.load = (figures.load[0], _load())
    return figures


async def warm_up(
    servers: dict[str, Server], rooms: dict[str, list[RoomUrls]], args: argparse.Namespace
) -> None:
    """Unmeasured storms on rooms of their own, so that every server is measured as it runs in
    production: warm. The reference's JIT needs them most: against clients that all arrive
    within milliseconds, its first three storms took 0.58, 0.37 and 0.35 s, its twentieth
    0.09 s."""
    for name, server in servers.items():
        for url_for in rooms[name]:
            storm = await run_storm(
                server,
                url_for,
                args.clients,
                args.gens,
                client=args.client,
                deflate=not args.no_deflate,
            )
            log("warm-up: " + _describe(name, "cold", storm))
            await asyncio.sleep(STORM_PAUSE_S)


# -- report ----------------------------------------------------------------------------------


def _finite(values: Sequence[float]) -> list[float]:
    return [v if not math.isnan(v) else math.inf for v in values]


def _median(values: Sequence[float]) -> float:
    return statistics.median(_finite(values)) if values else math.nan


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) or math.isinf(value) else f"{value:.{digits}f}"


def _spread(values: Sequence[float]) -> str:
    finite = _finite(values)
    return f"{_fmt(_median(values))} ({_fmt(min(finite))}-{_fmt(max(finite))})"


def _storm_rows(storms: dict[str, list[Storm]], memory: bool) -> list[str]:
    rows = []
    for name, runs in storms.items():
        cpu = _median([s.server_cpu_s for s in runs])
        gen = _median([s.generator_cpu_s for s in runs])
        kernel = _median([s.generator_system_cpu_s for s in runs])
        cells = [
            _label(name),
            _spread([s.all_synced_s for s in runs]),
            _fmt(_median([s.p99_ms for s in runs]), 0),
            _fmt(cpu),
            f"{_fmt(gen)} ({_fmt(kernel)})",
            _fmt(gen / cpu, 2) if cpu else "n/a",
            str(min(s.synced for s in runs)),
        ]
        if memory:
            # The first round's: later ones reuse the memory the first one's clients freed.
            cells.append(", ".join(_fmt(s.rss_kb_per_conn, 1) for s in runs))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _ratio_lines(storms: dict[str, list[Storm]], label: str) -> list[str]:
    return _reference_ratio(storms, label) + _baseline_ratio(storms, label)


def _baseline_ratio(storms: dict[str, list[Storm]], label: str) -> list[str]:
    ours, base = storms.get("ours"), storms.get(BASELINE)
    if not ours or not base:
        return []
    synced = _median([s.all_synced_s for s in ours]) / _median([s.all_synced_s for s in base])
    cpu = [o.server_cpu_s / b.server_cpu_s for o, b in zip(ours, base, strict=False)]
    return [
        f"- {label}: ours / baseline, median all-synced times: **{synced:.2f}**; server CPU, "
        f"median of the round-by-round ratios: **{_fmt(_median(cpu), 2)}** ("
        + ", ".join(_fmt(r, 2) for r in cpu)
        + ")"
    ]


def _reference_ratio(storms: dict[str, list[Storm]], label: str) -> list[str]:
    ours, ref = storms.get("ours"), storms.get("reference")
    if not ours or not ref:
        return []
    median_ratio = _median([s.all_synced_s for s in ours]) / _median([s.all_synced_s for s in ref])
    per_round = [o.all_synced_s / r.all_synced_s for o, r in zip(ours, ref, strict=False)]
    verdict = "met" if median_ratio <= TARGET_RATIO else "MISSED"
    return [
        f"- {label}: ours / reference, median all-synced times: **{median_ratio:.2f}** "
        f"(target <= {TARGET_RATIO}: **{verdict}**); round by round: "
        + ", ".join(_fmt(r, 2) for r in per_round)
    ]


def _table(storms: dict[str, list[Storm]], memory: bool = False) -> list[str]:
    header = (
        "| server | all synced (s), median (min-max) | p99 per client (ms) | server CPU (s) "
        "| generator CPU (s) (kernel part) | generator / server CPU | fewest synced |"
    )
    rule = "|---|---|---|---|---|---|---|"
    if memory:
        header += " server RSS growth per connection (KB), round by round |"
        rule += "---|"
    return [header, rule, *_storm_rows(storms, memory)]


def _client(args: argparse.Namespace) -> str:
    if args.client == "native":
        return "the C client (`bench/native/storm.c`, no compression offered)"
    if args.client == "raw":
        return "the lean client (`bench/node/rawws.mjs`, no compression offered)"
    offer = "no compression offered" if args.no_deflate else "offering permessage-deflate"
    return f"`ws` clients ({offer})"


def _argv() -> str:
    """The options this run was given, for the report's first line."""
    return "".join(f" {a}" for a in sys.argv[1:])


def report(parts: dict[str, PartFigures], args: argparse.Namespace, elapsed_s: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Join storms",
        "",
        f"`python -m bench.storm_bench{_argv()}` on {when}: {os.cpu_count()} CPUs, {_versions()}; "
        f"{args.placement}; {args.generators} generator process(es) of {_client(args)}; "
        f"{args.limits}; {args.warmup} unmeasured warm-up storms per server before the "
        f"{args.clients}-client parts. Whole run {elapsed_s:.0f} s; load average (1/5/15 min) "
        f"{args.load_before} before, {_load()} after.",
        "",
        "All synced: from the word go to the last client's sync step 2. Server CPU: the "
        "server process's CPU time over the same window; generator CPU: the load "
        "generator processes' own. Median over the rounds, the servers taking turns round "
        "by round.",
        "",
    ]
    titles = {
        "own": f"{args.clients} clients, each its own member and token",
        "shared": f"{args.clients} clients sharing one token",
    }
    for part in ("own", "shared"):
        if part not in parts:
            continue
        f = parts[part]
        lines += [
            f"## {titles[part]} ({args.rounds} rounds; load {f.load[0]} -> {f.load[1]})",
            "",
            "Cold: a room not in memory (ours loads it from PostgreSQL).",
            "",
            *_table(f.cold),
            "",
            "Warm: the same storm again at once, on the room the cold one left loaded.",
            "",
            *_table(f.warm),
            "",
            *_ratio_lines(f.cold, "cold"),
            *_ratio_lines(f.warm, "warm"),
            "",
        ]
    if "big" in parts:
        f = parts["big"]
        lines += [
            f"## {args.big_clients} clients, own members and tokens, cold room "
            f"({args.big_rounds} rounds; load {f.load[0]} -> {f.load[1]})",
            "",
            "Memory: the server's VmRSS two seconds after the storm, all connections open, "
            "minus before it, divided by the connections. These storms run first, so the "
            "first round's figure is the one on a heap no storm had grown; later rounds reuse "
            "what the earlier ones freed.",
            "",
            *_table(f.cold, memory=True),
            "",
            *_ratio_lines(f.cold, f"cold, {args.big_clients:,} clients"),
            "",
        ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


async def _rooms(
    servers: dict[str, Server], count: int, clients: int, *, shared: bool
) -> dict[str, list[RoomUrls]]:
    rooms: dict[str, list[RoomUrls]] = {}
    for name, server in servers.items():
        rooms[name] = [await server.new_room(clients, shared_token=shared) for _ in range(count)]
    return rooms


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    args.load_before = _load()
    split = None if args.no_pin else split_cpus()
    args.loadgen_cpus = None
    if split is not None:
        args.loadgen_cpus, server_cpus = split
        pin_servers(server_cpus)
        os.sched_setaffinity(0, args.loadgen_cpus)
        args.placement = (
            f"load generator on CPU {sorted(args.loadgen_cpus)}, server under test on CPU "
            f"{sorted(server_cpus)}"
        )
    else:
        args.placement = "not pinned"
    biggest = max(args.clients, args.big_clients if "big" in args.parts else 0)
    args.limits = raise_open_files(biggest + 1000)
    parts: dict[str, PartFigures] = {}
    with tempfile.TemporaryDirectory(prefix="flowai-storm-") as tmp:
        try:
            async with contextlib.AsyncExitStack() as stack:
                args.gens = await start_generators(
                    args.client, args.generators, cpus=args.loadgen_cpus
                )
                stack.push_async_callback(node_gen.stop_all, args.gens)
                servers: dict[str, Server] = {}
                for name in args.servers:
                    log(f"starting {LABELS[name]}")
                    servers[name] = await stack.enter_async_context(
                        STARTERS[name](Path(tmp), OURS_ENV)
                    )
                if args.baseline is not None:
                    log(f"starting ours as {args.baseline} has it")
                    workdir = Path(tmp) / BASELINE  # its own log and data folder
                    workdir.mkdir()
                    env = {**OURS_ENV, "PYTHONPATH": str(args.baseline)}
                    baseline = await stack.enter_async_context(STARTERS["ours"](workdir, env))
                    # Its turn right after ours: the pair of storms to compare, seconds apart.
                    order = list(servers)
                    order.insert(order.index("ours") + 1 if "ours" in order else 0, BASELINE)
                    servers = {name: servers.get(name, baseline) for name in order}
                plan: list[tuple[str, int, int, bool]] = []
                # The big storms first: on a heap that no earlier storm grew, their RSS
                # growth is memory the connections take rather than memory reused.
                if "big" in args.parts:
                    plan.append(("big", args.big_rounds, args.big_clients, False))
                if "own" in args.parts:
                    plan.append(("own", args.rounds, args.clients, False))
                if "shared" in args.parts:
                    plan.append(("shared", args.rounds, args.clients, True))
                # Every room first, so ours has unloaded them all by the time of the storms.
                log("making rooms, members and tokens")
                rooms = {
                    part: await _rooms(servers, count, clients, shared=shared)
                    for part, count, clients, shared in plan
                }
                warmup = await _rooms(servers, args.warmup, args.clients, shared=False)
                await asyncio.sleep(COLD_AFTER_S)
                for part, _count, clients, _shared in plan:
                    big = part == "big"
                    if not big and warmup:
                        # After the big storms, which read memory on a heap no storm grew.
                        await warm_up(servers, warmup, args)
                        warmup = {}
                    log(f"part {part}: {clients} clients")
                    parts[part] = await run_part(
                        servers,
                        rooms[part],
                        clients,
                        args,
                        warm=not big,
                        hold_s=HOLD_S if big else 0.0,
                    )
        except Exception as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            for log_file in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log_file.name}", file=sys.stderr)
                print(log_file.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    text = report(parts, args, time.monotonic() - started)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"written to {args.output}")
    return 0


def _names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n for n in text.split(",") if n]
        unknown = set(names) - set(allowed)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
        return names

    return parse


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="bench.storm_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), type=_names(SERVERS))
    parser.add_argument("--parts", default=",".join(PARTS), type=_names(PARTS))
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--big-clients", type=int, default=2000)
    parser.add_argument("--big-rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=10, help="unmeasured storms per server before the rounds"
    )
    parser.add_argument(
        "--generators", type=int, default=1, help="generator processes the clients are dealt over"
    )
    parser.add_argument(
        "--client",
        choices=("native", "raw", "ws"),
        default="native",
        help="the clients: native (bench/native/storm.c, the cheapest per client), raw (Node, "
        "bench/node/rawws.mjs) or ws (Node, the library, offers permessage-deflate unless "
        "--no-deflate); native and raw offer no compression",
    )
    parser.add_argument("--no-deflate", action="store_true", help="ws clients offer no compression")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place processes")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another version: its server runs as a fourth, for ours / baseline",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if min(args.clients, args.rounds, args.big_clients, args.big_rounds, args.generators) < 1:
        parser.error("counts must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "server" / "app.py").is_file():
            parser.error(f"--baseline {args.baseline}: not a checkout of this project")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

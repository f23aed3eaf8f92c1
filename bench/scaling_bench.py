"""Across instances: the per-update costs a model of scaling needs, measured here, and a run of
``--instances`` N ``flowai serve`` processes sharing one Redis and one PostgreSQL.

    python -m bench.scaling_bench                      (both parts, about three minutes)
    python -m bench.scaling_bench --parts instances --instances 8 --rooms 64

Part ``costs`` (each figure from its own small run; the model in the README is built on them):

- Redis, a private ``redis-server``: what the fan-out sends per update (``XADD`` with
  ``MINID`` trimming plus ``PEXPIRE``, pipelined 100 at a time as ``server.fanout_redis``
  writes them) and what a reading instance costs Redis per entry (``XREAD`` of ``count=1000``),
  plus the cost of one ``XREAD`` call that lists many streams with nothing new in them (each
  instance lists every stream it holds in one call). Redis CPU from ``/proc`` of its process;
  client CPU is this process's (redis-py, as the server uses it).
- PostgreSQL: ``PgDocumentStore.append`` of one small update per call (a group commit of one),
  one connection after another and 16 at once over 16 rooms: commits/s, and the CPU the
  database's backends used per commit.
- Our instance: two ``flowai serve`` with Redis; a Node writer (``bench/node/fanout.mjs``)
  on instance A, compaction kept out (its cost is ``bench.persistence_bench``'s). Each figure
  is the CPU difference of two runs that differ only in what is counted, so fixed costs (joins,
  timers, the projection refreshed once edits settle) cancel, the median of ``--cost-repeats``
  (3) such pairs:
  (a) ``--cost-rate`` / 4 and ``--cost-rate`` edits/s, no other client: A's CPU per accepted
  update; (b) ``--cost-observers`` / 10 and ``--cost-observers`` observers on A: A's CPU per
  delivery; (c) the two rates with one observer on B: B's CPU per update it receives from
  Redis and applies, and Redis's CPU per update with two instances holding the room.

Part ``instances``: one run on 1 instance, one on ``--instances`` (default 2, what fits two
cores), one Redis and one PostgreSQL: ``--rooms`` rooms, each with ``--writers`` writers at
``--rate`` edits/s and ``--observers`` observers, every client dealt round-robin over the
instances (so every room is held by every instance, as a popular room would be), for
``--duration`` s; the clients are ``bench/node/fanout.mjs`` on the first CPU. Reports
updates/s accepted, deliveries/s, delivered over expected, p50/p99 over every delivery and the
worst room's p99, and the CPU of every instance, of Redis and of the generator. Meant to be
run where more cores exist; on two shared cores every process competes with the others.

Writes ``bench/results/scaling.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench import node_gen, procstat
from bench.client import create_project
from bench.fanout_bench import hist_percentile
from bench.persistence_bench import NO_COMPACTION
from bench.sync_bench import split_cpus
from crdt.ports import RemoteUpdate
from persistence.db import Database
from persistence.documents import PgDocumentStore
from server.auth import mint_token
from server.fanout_redis import encode_event
from tests.support import pg
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.server import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scaling.md"
PARTS = ("costs", "instances")
OWNER = "bench-owner"
TOKEN = mint_token(TEST_SECRET, OWNER, ttl_s=3600)
SERVER_ENV = {
    "FLOWAI_LOG_LEVEL": "WARNING",
    "FLOWAI_CONN_MESSAGES_PER_S": "5000",
    "FLOWAI_USER_CONNECTIONS_MAX": "10000",
}
UPDATE_BYTES = 24  # a typical small timeline edit (bench/results/persistence.md: 24 per update)
PIPELINE = 100
POLL_CALLS = 2000  # many, so that Redis's own timers (10 per second) add little

_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    """One row of the costs table: what, the figure, and how it was obtained."""

    what: str
    value: float
    unit: str
    how: str


async def _spent(pid: int, work: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """CPU seconds of ``pid`` and of this process, and wall seconds, over ``work``."""
    pid_before, own_before, wall_before = procstat.cpu_s(pid), time.process_time(), time.monotonic()
    await work()
    return (
        procstat.cpu_s(pid) - pid_before,
        time.process_time() - own_before,
        time.monotonic() - wall_before,
    )


# -- Redis ------------------------------------------------------------------------------------


async def redis_costs(redis: RedisServer, updates: int) -> list[Measured]:
    assert redis.proc is not None
    pid = redis.proc.pid
    client: Any = aioredis.from_url(redis.url, decode_responses=False)
    fields = encode_event(RemoteUpdate(uuid.uuid4().hex, 1, b"u" * UPDATE_BYTES))
    rows: list[Measured] = []
    try:
        for streams in (1, 1000):
            keys = [f"flowai:v1:doc:bench-{streams}-{k}" for k in range(streams)]

            async def publish(keys: list[str] = keys) -> None:
                for first in range(0, updates, PIPELINE):
                    pipe = client.pipeline(transaction=False)
                    minid = b"%d-0" % max(0, int(time.time() * 1000) - 300_000)
                    for n in range(first, min(updates, first + PIPELINE)):
                        key = keys[n % len(keys)]
                        pipe.xadd(key, fields, minid=minid, approximate=True)
                        pipe.pexpire(key, 600_000)
                    await pipe.execute()

            redis_s, own_s, wall_s = await _spent(pid, publish)
            rows += [
                Measured(
                    f"Redis CPU per update published (XADD + PEXPIRE, pipelined, {streams} "
                    "stream(s))",
                    redis_s / updates * 1e6,
                    "µs",
                    f"{updates:,} updates in {wall_s:.2f} s",
                ),
                Measured(
                    f"instance (redis-py) CPU per update published, {streams} stream(s)",
                    own_s / updates * 1e6,
                    "µs",
                    "the same run, this process",
                ),
            ]
        key = "flowai:v1:doc:bench-1-0"

        async def read_all() -> None:
            last = b"0-0"
            for _ in range(updates // 1000 + 2):
                replies = await client.xread({key: last}, count=1000)
                if not replies:
                    return
                last = replies[0][1][-1][0]

        redis_s, own_s, _ = await _spent(pid, read_all)
        rows += [
            Measured(
                "Redis CPU per entry read by one instance (XREAD count=1000)",
                redis_s / updates * 1e6,
                "µs",
                f"{updates:,} entries",
            ),
            Measured(
                "instance (redis-py) CPU per entry read",
                own_s / updates * 1e6,
                "µs",
                "the same run, this process",
            ),
        ]
        for streams in (1, 100, 1000):
            listed = {f"flowai:v1:doc:bench-1000-{k}": b"$" for k in range(streams)}

            async def poll(listed: dict[str, bytes] = listed) -> None:
                # "$" (only entries newer than now) with no BLOCK: returns empty at once,
                # the cost of listing the streams alone.
                for _ in range(POLL_CALLS):
                    await client.xread(listed)

            redis_s, _, _ = await _spent(pid, poll)
            rows.append(
                Measured(
                    f"Redis CPU per XREAD call listing {streams} stream(s), nothing new",
                    redis_s / POLL_CALLS * 1e6,
                    "µs",
                    f"{POLL_CALLS} calls",
                )
            )
    finally:
        await client.aclose()
    return rows


# -- PostgreSQL --------------------------------------------------------------------------------


async def _backends(conn: Any) -> list[int]:
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    return [int(r["pid"]) for r in rows]


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += procstat.cpu_s(pid)
    return total


async def postgres_costs(commits: int) -> list[Measured]:
    name = pg.fresh_name()
    await pg.create_database(name)
    rows: list[Measured] = []
    try:
        db = await Database.connect(pg.dsn_for(name), min_size=16, max_size=16)
        try:
            await db.migrate()
            store = PgDocumentStore(db)
            rooms = [uuid.uuid4() for _ in range(16)]
            for room in rooms:
                await db.pool.execute(
                    "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, 'u', 't')", room
                )
            async with db.pool.acquire() as probe:
                pids = await _backends(probe)
            update = b"u" * UPDATE_BYTES
            for concurrency in (1, 16):

                async def one(room: uuid.UUID, count: int) -> None:
                    for _ in range(count):
                        await store.append(str(room), [update])

                before, wall = _cpu_of(pids), time.monotonic()
                per = commits // concurrency
                await asyncio.gather(*(one(rooms[k], per) for k in range(concurrency)))
                wall = time.monotonic() - wall
                spent = _cpu_of(pids) - before
                done = per * concurrency
                rows += [
                    Measured(
                        f"PostgreSQL commits/s, one update each, {concurrency} at once",
                        done / wall,
                        "commits/s",
                        f"{done:,} `PgDocumentStore.append` calls in {wall:.2f} s",
                    ),
                    Measured(
                        f"PostgreSQL backend CPU per commit, {concurrency} at once",
                        spent / done * 1e6,
                        "µs",
                        "the database's backend processes (not the WAL writer)",
                    ),
                ]
        finally:
            await db.close()
    finally:
        await pg.drop_database(name)
    return rows


# -- our instances -----------------------------------------------------------------------------


async def _project(port: int) -> str:
    return await create_project(port, TOKEN, "bench")


def _url(port: int, room: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/{room}?token={TOKEN}"


@contextlib.asynccontextmanager
async def instances(
    count: int, redis_url: str | None, work: Path, **env: str
) -> AsyncIterator[list[ServerProcess]]:
    """``count`` servers on one fresh database, with Redis at ``redis_url`` (None: without,
    fanning out in process)."""
    name = pg.fresh_name()
    await pg.create_database(name)
    procs = [ServerProcess(pg.dsn_for(name), work / f"i{k}") for k in range(count)]
    for proc in procs:
        proc.env.pop("FLOWAI_REDIS_URL", None)
        if redis_url is not None:
            proc.env["FLOWAI_REDIS_URL"] = redis_url
        proc.env.update({**SERVER_ENV, **env})
    try:
        await asyncio.gather(*(p.start(timeout=60) for p in procs))
        yield procs
    finally:
        await asyncio.gather(*(p.stop_or_kill() for p in procs))
        await pg.drop_database(name)


def _pid(proc: ServerProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


async def _fanout(gen: node_gen.Generator, payload: dict[str, Any]) -> dict[str, Any]:
    """One run of ``bench/node/fanout.mjs``: connect, go, result, close."""
    await node_gen.hand_out([gen], [{"client": "raw", "drain_s": 1, **payload}])
    await asyncio.sleep(1)
    await gen.say("go")
    result = await gen.line(float(payload["duration_s"]) + 60)
    await gen.say("close")
    await gen.line(30)
    return result


async def instance_costs(
    redis: RedisServer, work: Path, rate: float, observers: int, duration: float, repeats: int
) -> list[Measured]:
    """Each cost is the difference of two runs that differ only in what is measured (the
    number of edits, or of observers), so fixed costs (joins, timers, the projection refreshed
    once edits settle) cancel out."""
    assert redis.proc is not None
    rows: list[Measured] = []
    gens = await node_gen.start("fanout.mjs", 1, cpus=None)
    try:
        # Compaction (every 1,000 updates, and when a room unloads 10 s after its last client
        # left) would land in one run and not another; its cost is bench.persistence_bench's
        # to measure. So no thresholds are reached and the rooms stay loaded throughout.
        keep = {**NO_COMPACTION, "FLOWAI_ROOM_UNLOAD_GRACE_MS": str(3_600_000)}
        async with instances(2, redis.url, work, **keep) as (a, b):
            pids = {"A": _pid(a), "B": _pid(b), "redis": redis.proc.pid}

            async def run(
                writer_on: ServerProcess, observers_on: ServerProcess | None, count: int, r: float
            ) -> tuple[dict[str, float], dict[str, Any]]:
                room = await _project(a.port)
                watchers = [] if observers_on is None else [_url(observers_on.port, room)] * count
                before = {k: procstat.cpu_s(p) for k, p in pids.items()}
                result = await _fanout(
                    gens[0],
                    {
                        "writer_url": _url(writer_on.port, room),
                        "observer_urls": watchers,
                        "rate_per_s": r,
                        "duration_s": duration,
                    },
                )
                return {k: procstat.cpu_s(p) - before[k] for k, p in pids.items()}, result

            low, high = rate / 4, rate
            fan_rate = max(1.0, rate / 10)
            few = max(1, observers // 10)
            accept, deliver, remote, redis_remote = [], [], [], []
            accept_alone: list[float] = []
            notes: dict[str, str] = {}
            # Alternating pairs, the median kept: one pair moves with whatever else the
            # machine does during it.
            for _ in range(repeats):
                (s1, r1), (s2, r2) = [await run(a, None, 0, r) for r in (low, high)]
                accept.append((s2["A"] - s1["A"]) / (r2["sent"] - r1["sent"]) * 1e6)
                (s1, r1), (s2, r2) = [await run(a, a, n, fan_rate) for n in (few, observers)]
                more = r2["received"] - r1["received"]
                deliver.append((s2["A"] - s1["A"]) / more * 1e6)
                notes["deliveries"] = f"{more:,}"
                (s1, r1), (s2, r2) = [await run(a, b, 1, r) for r in (low, high)]
                edits = r2["sent"] - r1["sent"]
                remote.append((s2["B"] - s1["B"]) / edits * 1e6)
                redis_remote.append((s2["redis"] - s1["redis"]) / edits * 1e6)
                notes["remote"] = f"{r2['received']} of {r2['sent']} delivered"
                log(
                    f"costs: accept {accept[-1]:.0f} µs, delivery {deliver[-1]:.1f} µs, "
                    f"remote {remote[-1]:.0f} µs, Redis {redis_remote[-1]:.0f} µs"
                )

            def spread(values: list[float]) -> str:
                return f"median of {len(values)} pairs ({min(values):,.1f}-{max(values):,.1f})"

        # The same accepted-update pairs on an instance without Redis: what the fan-out
        # through Redis adds to each update.
        async with instances(1, None, work / "alone", **keep) as (alone,):
            alone_pids = {"A": _pid(alone)}
            for _ in range(repeats):
                pair = []
                for r in (low, high):
                    room = await _project(alone.port)
                    before = procstat.cpu_s(alone_pids["A"])
                    result = await _fanout(
                        gens[0],
                        {
                            "writer_url": _url(alone.port, room),
                            "observer_urls": [],
                            "rate_per_s": r,
                            "duration_s": duration,
                        },
                    )
                    pair.append((procstat.cpu_s(alone_pids["A"]) - before, result["sent"]))
                (c1, n1), (c2, n2) = pair
                accept_alone.append((c2 - c1) / (n2 - n1) * 1e6)
                log(f"costs: accept without Redis {accept_alone[-1]:.0f} µs")
            rows += [
                Measured(
                    "instance CPU per accepted update (receive, apply, group commit, publish "
                    "to Redis, read its own entry back; compaction kept out)",
                    statistics.median(accept),
                    "µs",
                    f"runs on A at {low:g} and {rate:g} edits/s for {duration:g} s, no other "
                    f"client, CPU difference over the difference in edits; {spread(accept)}",
                ),
                Measured(
                    "the same on an instance without Redis (in-process fan-out)",
                    statistics.median(accept_alone),
                    "µs",
                    f"the same pairs of runs on a third server; {spread(accept_alone)}",
                ),
                Measured(
                    "instance CPU per delivery to a local client",
                    statistics.median(deliver),
                    "µs",
                    f"{fan_rate:g} edits/s on A to {few} and to {observers} observers on A: "
                    f"CPU difference over {notes['deliveries']} more deliveries; "
                    f"{spread(deliver)}",
                ),
                Measured(
                    "instance CPU per update received from Redis (XREAD, decode, apply, one "
                    "delivery)",
                    statistics.median(remote),
                    "µs",
                    f"writer on A at {low:g} and {rate:g} edits/s, one observer on B: B's CPU "
                    f"difference over the difference in edits ({notes['remote']}); "
                    f"{spread(remote)}",
                ),
                Measured(
                    "Redis CPU per update, room held by two instances",
                    statistics.median(redis_remote),
                    "µs",
                    "the same runs: an XADD and a PEXPIRE, the entry read by both instances, "
                    f"and the commit markers; {spread(redis_remote)}",
                ),
            ]
    finally:
        await node_gen.stop_all(gens)
    return rows


# -- part 2: N instances -----------------------------------------------------------------------


@dataclass
class InstancesRun:
    instances: int
    rooms: int
    writers: int
    observers: int
    rate: float
    duration: float
    sent_per_s: float
    delivered_per_s: float
    delivered_ratio: float
    p50_ms: float
    p99_ms: float
    worst_room_p99_ms: float
    cpu_pct: dict[str, float]


async def instances_run(
    redis: RedisServer, work: Path, count: int, args: argparse.Namespace
) -> InstancesRun:
    """``args.rooms`` rooms, each with ``args.writers`` writers and ``args.observers``
    observers dealt round-robin over ``count`` instances, so every room is held by every
    instance (the case that costs Redis most: each entry is read by all of them)."""
    assert redis.proc is not None
    gens = await node_gen.start("fanout.mjs", 1, cpus=args.loadgen_cpus)
    try:
        async with instances(count, redis.url, work) as procs:
            rooms = [await _project(procs[0].port) for _ in range(args.rooms)]

            def on(k: int, room: str) -> str:
                return _url(procs[k % len(procs)].port, room)

            spec = [
                {
                    "writer_urls": [on(r + w, room) for w in range(args.writers)],
                    "observer_urls": [on(r + o, room) for o in range(args.observers)],
                }
                for r, room in enumerate(rooms)
            ]
            pids = {f"instance {k + 1}": _pid(p) for k, p in enumerate(procs)}
            pids["redis"] = redis.proc.pid
            pids["generator"] = gens[0].pid
            before = {k: procstat.cpu_s(p) for k, p in pids.items()}
            wall = time.monotonic()
            result = await _fanout(
                gens[0],
                {
                    "rooms": spec,
                    "rate_per_s": args.rate,
                    "duration_s": args.duration,
                    "drain_s": 2,
                },
            )
            wall = time.monotonic() - wall
            cpu = {k: 100 * (procstat.cpu_s(p) - before[k]) / wall for k, p in pids.items()}
    finally:
        await node_gen.stop_all(gens)
    hist = {int(b): int(n) for b, n in result["hist"].items()}
    expected = sum(r["sent"] * r["observers"] for r in result["rooms"])
    room_p99 = [r["p99_ms"] for r in result["rooms"] if r["p99_ms"] is not None]
    return InstancesRun(
        instances=count,
        rooms=args.rooms,
        writers=args.writers,
        observers=args.observers,
        rate=args.rate,
        duration=args.duration,
        sent_per_s=result["sent"] / args.duration,
        delivered_per_s=result["received"] / args.duration,
        delivered_ratio=result["received"] / expected if expected else float("nan"),
        p50_ms=hist_percentile(hist, result["bucket_ms"], 0.50),
        p99_ms=hist_percentile(hist, result["bucket_ms"], 0.99),
        worst_room_p99_ms=max(room_p99, default=float("nan")),
        cpu_pct=cpu,
    )


# -- report ------------------------------------------------------------------------------------


def _argv() -> str:
    """The options this run was given, for the report's first line."""
    return "".join(f" {a}" for a in sys.argv[1:])


def report(
    costs: list[Measured], runs: list[InstancesRun], args: argparse.Namespace, elapsed_s: float
) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Scaling across instances: measured inputs",
        "",
        f"`python -m bench.scaling_bench{_argv()}` on {when}: {os.cpu_count()} CPUs shared "
        f"by every process; load average (1/5/15 min) {args.load_before} before, "
        f"{procstat.load_average()} after; whole run {elapsed_s:.0f} s.",
        "",
    ]
    if costs:
        lines += [
            "## Per-update costs",
            "",
            "| what | figure | how |",
            "|---|---|---|",
            *(f"| {m.what} | {m.value:,.1f} {m.unit} | {m.how} |" for m in costs),
            "",
        ]
    if runs:
        lines += [
            "## N instances, one Redis, one PostgreSQL",
            "",
            "Every room has writers and observers dealt round-robin over the instances, so "
            "each room is held by every instance. Updates/s are the edits the instances "
            "accepted; delivered/s what reached observers. CPU in % of one core over the run "
            "(the Node generator included: near 100 % it, not the servers, sets the pace).",
            "",
            "| instances | rooms x (writers + observers) x rate | updates/s | delivered/s "
            "| delivered (%) | p50 / p99 / worst room p99 (ms) | CPU (%) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in runs:
            cpu = ", ".join(f"{k} {v:.0f}" for k, v in r.cpu_pct.items())
            lines.append(
                f"| {r.instances} | {r.rooms} x ({r.writers} + {r.observers}) x {r.rate:g}/s "
                f"| {r.sent_per_s:,.0f} | {r.delivered_per_s:,.0f} "
                f"| {100 * r.delivered_ratio:.2f} "
                f"| {r.p50_ms:.1f} / {r.p99_ms:.1f} / {r.worst_room_p99_ms:.1f} | {cpu} |"
            )
        lines.append("")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    args.load_before = procstat.load_average()
    # The generator on the first CPU; the servers, Redis and PostgreSQL wherever there is room.
    split = None if args.no_pin else split_cpus()
    args.loadgen_cpus = split[0] if split is not None else None
    costs: list[Measured] = []
    runs: list[InstancesRun] = []
    with tempfile.TemporaryDirectory(prefix="flowai-scaling-") as tmp:
        work = Path(tmp)
        redis = await RedisServer(work).start()
        try:
            if "costs" in args.parts:
                log("Redis costs")
                costs += await redis_costs(redis, args.redis_updates)
                log("PostgreSQL costs")
                costs += await postgres_costs(args.commits)
                log("instance costs")
                costs += await instance_costs(
                    redis,
                    work,
                    args.cost_rate,
                    args.cost_observers,
                    args.cost_duration,
                    args.cost_repeats,
                )
                for m in costs:
                    log(f"{m.what}: {m.value:,.1f} {m.unit} ({m.how})")
            if "instances" in args.parts:
                for count in sorted({1, args.instances}):
                    log(f"{count} instance(s)")
                    r = await instances_run(redis, work, count, args)
                    runs.append(r)
                    log(
                        f"{count} instance(s): {r.sent_per_s:,.0f} updates/s, "
                        f"{r.delivered_per_s:,.0f} delivered/s ({r.delivered_ratio:.2%}), p50 "
                        f"{r.p50_ms:.1f} p99 {r.p99_ms:.1f} ms, CPU {r.cpu_pct}"
                    )
        finally:
            await redis.stop()
    text = report(costs, runs, args, time.monotonic() - started)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"written to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="bench.scaling_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        type=lambda text: [p for p in text.split(",") if p],
        help="comma-separated subset of: " + ", ".join(PARTS),
    )
    parser.add_argument("--instances", type=int, default=2, help="flowai serve processes")
    parser.add_argument("--rooms", type=int, default=16)
    parser.add_argument("--writers", type=int, default=2, help="writers per room")
    parser.add_argument("--observers", type=int, default=20, help="observers per room")
    parser.add_argument("--rate", type=float, default=25.0, help="edits/s per writer")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the generator")
    parser.add_argument("--redis-updates", type=int, default=20_000)
    parser.add_argument("--commits", type=int, default=2_000)
    parser.add_argument("--cost-rate", type=float, default=200.0)
    parser.add_argument("--cost-observers", type=int, default=200)
    parser.add_argument("--cost-duration", type=float, default=4.0)
    parser.add_argument("--cost-repeats", type=int, default=3, help="pairs of runs per cost")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if min(args.instances, args.rooms, args.writers, args.observers) < 1:
        parser.error("--instances, --rooms, --writers and --observers must be at least 1")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

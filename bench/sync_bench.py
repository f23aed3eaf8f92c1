"""Sync benchmark: our server against the reference y-websocket server and a bare relay.

    python -m bench.sync_bench            (from the repository root, in the virtualenv)

Three servers, all started as subprocesses on free local ports and kept running throughout:

- ours: ``flowai serve`` on a fresh PostgreSQL database; one project per scenario, created over
  REST, with one member per client (as many people as sockets); each client authenticates with
  its own token in ``?token=``.
- reference: ``@y/websocket-server`` (``tests/interop/node_modules``, run ``npm ci`` there),
  which keeps each room's Y.Doc in memory, ignores tokens and names rooms by path.
- bare: ``bench.bare_relay``, a fan-out with no CRDT on the same stack as ours: the floor.

The same scenarios run against each (``bench.loadgen`` clients, all in this process's event
loop, which is separate from every server process):

- rate: 2 clients x 20 edits/s, 10 x 10/s, 50 x 2/s for ``--duration`` s; propagation
  latency p50/p99 (send to receive, over every delivery to every other client), delivered over
  expected deliveries, and the server's CPU use over the run;
- storm: ``--storm-clients`` clients connect to one room at once; time until every client has
  its sync step 2, the p99 of the per-client times, and the CPU time the server and the load
  generator used meanwhile. For ours the room is cold (created earlier and unloaded since), so
  the storm includes loading it from the database; then the same storm again at once, on the
  room the first one left loaded. A storm lasts about half a second here, and one run is
  noisy (+-15 %), so there are ``--storm-rounds`` of them, each on its own room, and the table
  gives the median run with the fastest and the slowest. The servers take turns, round by
  round (ours, the reference, the bare relay, then the next round), so that a slow spell of
  the shared machine falls on all three rather than on whichever was being measured;
- memory: the server's RSS (``VmRSS``) before and after opening as many connections, 50 at a
  time, all synced and idle, divided by their number;
- knee: 10 clients at 10, 20, 40, ... 320 edits/s each, ``--knee-duration`` s per step, up to
  the first step that misses p99 < 100 ms with >= 99 % delivered twice in a row.

The load generator and the server under test run on separate CPUs (this process pins itself
to the first CPU it may use and each server to the others; ``--no-pin`` leaves placement to the
scheduler). Unpinned, the two processes wake each other over loopback and Linux tends to run
the woken one on the waker's CPU, so they often share one core while the other idles; the same
500-client storm then cost the load generator 0.35-0.41 s of CPU against our server and
0.22-0.32 s against the reference, which measures the scheduler rather than the servers.
PostgreSQL, which only our server uses, is not pinned.

Prints a markdown table with the ratios the targets are stated in and writes it to
``bench/results/sync.md``. Each scenario uses a fresh room, so documents do not grow across
scenarios. Everything is bounded; the whole run takes about five minutes on two cores.
``--servers``, ``--scenarios`` and ``--ours-env FLOWAI_...=...`` narrow a run down while tuning.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

import httpx

from bench.loadgen import (
    RateResult,
    StormResult,
    close_all,
    connect_in_batches,
    connect_storm,
    run_rate,
)
from server.auth import mint_token
from tests.support import pg

ROOT = Path(__file__).resolve().parent.parent
INTEROP_DIR = ROOT / "tests" / "interop"
REFERENCE_SERVER = INTEROP_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
RESULTS = ROOT / "bench" / "results" / "sync.md"

SERVERS = ("ours", "reference", "bare")
SCENARIOS = ("memory", "rate", "storm", "knee")
LABELS = {"ours": "ours", "reference": "reference (Node)", "bare": "bare relay"}
RATE_SCENARIOS = ((2, 20.0), (10, 10.0), (50, 2.0))
KNEE_CLIENTS = 10
KNEE_RATES = (10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
KNEE_P99_MS = 100.0
KNEE_DELIVERED = 0.99
BENCH_SECRET = "bench-secret-that-is-long-enough-for-hs256"
START_TIMEOUT_S = 60.0
# Longer than our server's default grace before it unloads a room with no connections.
COLD_AFTER_S = 12.0
# Between storm rounds: the closes of one round are over before the next starts.
STORM_PAUSE_S = 1.0
# What a client of room i connects to (one member and token per client for ours).
RoomUrls = Callable[[int], str]
MEMBER_BATCH = 50  # members added concurrently while a room is made
STOP_TIMEOUT_S = 20.0
TOKEN_TTL_S = 4 * 3600


class NewRoom(Protocol):
    """Makes a room for ``clients`` clients; with ``shared_token`` every client of ours
    presents one token (one member's sockets), otherwise each its own member and token."""

    def __call__(self, clients: int, *, shared_token: bool = False) -> Awaitable[RoomUrls]: ...


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found for pid {pid}")


def _cpu_s(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path
    # Creates a room for that many clients and returns the url client i connects to.
    new_room: NewRoom

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        return _proc_status_kb(self.pid, "VmRSS")

    def cpu_s(self) -> float:
        return _cpu_s(self.pid)


async def _wait_ready(process: asyncio.subprocess.Process, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    raise RuntimeError(f"server did not become ready at {url}; its log ends with:\n{tail}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


# The CPUs the servers under test run on (None: wherever the scheduler puts them).
_server_cpus: set[int] | None = None


def split_cpus() -> tuple[set[int], set[int]] | None:
    """CPUs for the load generator (one) and for the server under test (the rest), or None
    if there are not two to split or the platform cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def pin_servers(cpus: set[int] | None) -> None:
    """The CPUs every server started from now on runs on (None: the scheduler decides)."""
    global _server_cpus
    _server_cpus = cpus


def _pin_server() -> None:
    # Runs in the child before exec, so the server's threads all inherit it.
    if _server_cpus is not None:
        os.sched_setaffinity(0, _server_cpus)


@asynccontextmanager
async def _spawn(
    cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, ready_url: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log_path.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_pin_server
        )
    try:
        await _wait_ready(process, ready_url, log_path)
        yield process
    finally:
        await _stop(process)


def _flowai_command() -> list[str]:
    # The console script when the project is installed in this environment, otherwise the
    # same entry point through the interpreter.
    script = Path(sys.executable).with_name("flowai")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


@asynccontextmanager
async def start_ours(workdir: Path, overrides: dict[str, str]) -> AsyncIterator[Server]:
    database = pg.fresh_name()
    await pg.create_database(database)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWAI_")}
    env.update(
        FLOWAI_DATABASE_URL=pg.dsn_for(database),
        FLOWAI_JWT_SECRET=BENCH_SECRET,
        FLOWAI_HOST="127.0.0.1",
        FLOWAI_PORT=str(port),
        FLOWAI_LOG_LEVEL="WARNING",
        FLOWAI_LOG_JSON="false",
        FLOWAI_DATA_DIR=str(workdir / "ours-data"),
    )
    env.update(overrides)
    command = _flowai_command()
    minted = await asyncio.to_thread(
        subprocess.run,
        [*command, "token", "--user", "bench-owner"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    token = minted.stdout.strip()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "ours.log"
    try:
        async with (
            _spawn([*command, "serve"], env, ROOT, log_path, f"{base}/healthz") as process,
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as http,
        ):

            async def add_member(project_id: str, user: str) -> None:
                added = await http.post(
                    f"/api/projects/{project_id}/members", json={"user_id": user, "role": "editor"}
                )
                added.raise_for_status()

            async def new_room(clients: int, *, shared_token: bool = False) -> RoomUrls:
                # One member, with its own token, per client: as many browsers of as many
                # people (one user's sockets are capped by FLOWAI_USER_CONNECTIONS_MAX).
                response = await http.post("/api/projects", json={"title": "Bench"})
                response.raise_for_status()
                project_id = response.json()["id"]
                # Users (and so tokens) of this room only: no storm is helped by tokens the
                # server verified, and cached, for another scenario.
                count = 1 if shared_token else clients
                users = [f"bench-{project_id[:8]}-{i}" for i in range(count)]
                for first in range(0, len(users), MEMBER_BATCH):
                    batch = users[first : first + MEMBER_BATCH]
                    await asyncio.gather(*(add_member(project_id, user) for user in batch))
                if shared_token:
                    url = (
                        f"ws://127.0.0.1:{port}/ws/{project_id}"
                        f"?token={mint_token(BENCH_SECRET, users[0], ttl_s=TOKEN_TTL_S)}"
                    )
                    return lambda _i: url
                urls = [
                    f"ws://127.0.0.1:{port}/ws/{project_id}"
                    f"?token={mint_token(BENCH_SECRET, user, ttl_s=TOKEN_TTL_S)}"
                    for user in users
                ]
                return urls.__getitem__

            yield Server("ours", port, process, log_path, new_room)
    finally:
        await pg.drop_database(database)


def _path_rooms(port: int) -> NewRoom:
    # No tokens: every client of a room has the same url either way.
    async def new_room(_clients: int, *, shared_token: bool = False) -> RoomUrls:
        url = f"ws://127.0.0.1:{port}/bench-{uuid.uuid4().hex[:12]}"
        return lambda _i: url

    return new_room


@asynccontextmanager
async def start_reference(workdir: Path, _overrides: dict[str, str]) -> AsyncIterator[Server]:
    node = shutil.which("node")
    if node is None or not REFERENCE_SERVER.exists():
        raise RuntimeError("the reference server needs node and `npm ci` in tests/interop")
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    env.pop("YPERSISTENCE", None)  # Keep it in memory, as it is by default.
    log_path = workdir / "reference.log"
    cmd = [node, str(REFERENCE_SERVER)]
    async with _spawn(cmd, env, INTEROP_DIR, log_path, f"http://127.0.0.1:{port}/") as process:
        yield Server("reference", port, process, log_path, _path_rooms(port))


@asynccontextmanager
async def start_bare(workdir: Path, _overrides: dict[str, str]) -> AsyncIterator[Server]:
    port = free_port()
    log_path = workdir / "bare.log"
    cmd = [sys.executable, "-m", "bench.bare_relay", "--host", "127.0.0.1", "--port", str(port)]
    ready = f"http://127.0.0.1:{port}/healthz"
    async with _spawn(cmd, dict(os.environ), ROOT, log_path, ready) as process:
        yield Server("bare", port, process, log_path, _path_rooms(port))


STARTERS = {"ours": start_ours, "reference": start_reference, "bare": start_bare}


# -- scenarios -------------------------------------------------------------------------------


@dataclass
class KneeStep:
    rate_per_s: float
    result: RateResult

    @property
    def passed(self) -> bool:
        r = self.result
        return (
            r.connected == KNEE_CLIENTS
            and r.p99_ms < KNEE_P99_MS
            and r.delivered_ratio >= KNEE_DELIVERED
        )


@dataclass
class StormRound:
    # The storm on a room not in memory (ours: cold, loaded from the database; the others: a
    # room name not used before).
    cold: StormResult
    # The same storm again at once, on the room the first one left loaded.
    live: StormResult
    # CPU seconds the server and the load generator used during the first storm.
    server_cpu_s: float
    clients_cpu_s: float


def _slowest_last(result: StormResult) -> float:
    return math.inf if math.isnan(result.total_s) else result.total_s


@dataclass
class ServerFigures:
    rate: dict[tuple[int, float], RateResult] = field(default_factory=dict)
    storm_rounds: list[StormRound] = field(default_factory=list)
    memory_kb_per_conn: float = math.nan
    knee_steps: list[KneeStep] = field(default_factory=list)

    def storm_round(self, *, live: bool = False) -> StormRound:
        """The round with the median storm time (of an even count, the slower of the two in
        the middle); a storm that did not sync every client counts as the slowest."""
        if not self.storm_rounds:
            raise LookupError("no storm figures")
        ordered = sorted(self.storm_rounds, key=lambda r: _slowest_last(r.live if live else r.cold))
        return ordered[len(ordered) // 2]

    def storm_times(self, *, live: bool = False) -> list[float]:
        return sorted(_slowest_last(r.live if live else r.cold) for r in self.storm_rounds)

    @property
    def knee(self) -> float:
        if not self.knee_steps:
            return math.nan
        passed = [s.rate_per_s for s in self.knee_steps if s.passed]
        return max(passed, default=0.0)

    @property
    def knee_capped(self) -> bool:
        return bool(self.knee_steps) and all(s.passed for s in self.knee_steps)


async def _rate(
    server: Server, clients: int, rate: float, duration: float, deflate: bool
) -> RateResult:
    url_for = await server.new_room(clients)
    return await run_rate(
        url_for, clients, rate, duration, deflate=deflate, server_cpu_s=server.cpu_s
    )


async def prepare(
    server: Server, args: argparse.Namespace
) -> tuple[ServerFigures, list[RoomUrls], float]:
    """Make the storm rooms, then measure memory and rates; the storms come later. Returns
    the figures so far, the storm rooms and when they were made."""
    figures = ServerFigures()
    deflate = not args.no_deflate
    # Made first so that, by the time of the storms, our server has unloaded them: each storm
    # then hits a cold room that must be loaded from the database, the case to be fast at.
    storm_rooms = []
    if "storm" in args.scenarios:
        storm_rooms = [await server.new_room(args.storm_clients) for _ in range(args.storm_rounds)]
    rooms_made = time.monotonic()
    # First, while the heap holds no memory freed by earlier scenarios that new connections
    # could reuse unseen.
    if "memory" in args.scenarios:
        await _measure_memory(server, args, figures, deflate)
    if "rate" in args.scenarios:
        await _measure_rates(server, args, figures, deflate)
    return figures, storm_rooms, rooms_made


async def measure_storms(
    servers: dict[str, Server],
    rooms: dict[str, list[RoomUrls]],
    figures: dict[str, ServerFigures],
    args: argparse.Namespace,
    rooms_made: float,
) -> None:
    """Storm round k of every server, then round k + 1: the servers take turns, so a slow
    spell of the machine falls on all of them instead of on whichever ran then."""
    await asyncio.sleep(max(0.0, rooms_made + COLD_AFTER_S - time.monotonic()))
    for round_ in range(args.storm_rounds):
        for name, server in servers.items():
            await _measure_storm(
                server, rooms[name][round_], args, figures[name], not args.no_deflate
            )
            await asyncio.sleep(STORM_PAUSE_S)


async def measure_knee(server: Server, args: argparse.Namespace, figures: ServerFigures) -> None:
    if "knee" in args.scenarios:
        await _measure_knee(server, args, figures, not args.no_deflate)


async def _measure_rates(
    server: Server, args: argparse.Namespace, figures: ServerFigures, deflate: bool
) -> None:
    for clients, rate in RATE_SCENARIOS:
        result = await _rate(server, clients, rate, args.duration, deflate)
        figures.rate[(clients, rate)] = result
        log(
            f"{server.name}: {clients}x{rate:g}/s p50 {result.p50_ms:.1f} ms "
            f"p99 {result.p99_ms:.1f} ms delivered {result.delivered}/{result.expected} "
            f"cpu {result.server_cpu_pct:.0f}% (clients {result.loadgen_cpu_pct:.0f}%) "
            f"{'; '.join(result.errors[:3])}"
        )


async def _measure_storm(
    server: Server,
    url_for: Callable[[int], str],
    args: argparse.Namespace,
    figures: ServerFigures,
    deflate: bool,
) -> None:
    storms: list[tuple[StormResult, float, float]] = []
    for live in (False, True):
        cpu_before, own_before = server.cpu_s(), time.process_time()
        storm, clients = await connect_storm(url_for, args.storm_clients, deflate=deflate)
        cpu_s, own_s = server.cpu_s() - cpu_before, time.process_time() - own_before
        await close_all(clients)
        storms.append((storm, cpu_s, own_s))
        log(
            f"{server.name}: storm{' (live room)' if live else ''} {storm.synced}/{storm.clients} "
            f"synced in {storm.total_s:.2f} s, p50 {storm.p50_ms:.0f} ms, "
            f"p99 {storm.p99_ms:.0f} ms, server CPU {cpu_s:.2f} s, clients CPU {own_s:.2f} s "
            f"{'; '.join(storm.errors[:3])}"
        )
    (cold, cpu_s, own_s), (live_storm, _, _) = storms
    figures.storm_rounds.append(StormRound(cold, live_storm, cpu_s, own_s))


async def _measure_memory(
    server: Server, args: argparse.Namespace, figures: ServerFigures, deflate: bool
) -> None:
    url_for = await server.new_room(args.storm_clients)
    await asyncio.sleep(1)
    rss_before = server.rss_kb()
    clients, errors = await connect_in_batches(url_for, args.storm_clients, deflate=deflate)
    try:
        await asyncio.sleep(2)  # Idle: let the server finish the greetings and settle.
        rss_after = server.rss_kb()
        opened = sum(c.synced.is_set() for c in clients)
    finally:
        await close_all(clients)
    if opened:
        figures.memory_kb_per_conn = (rss_after - rss_before) / opened
    log(
        f"{server.name}: {opened} idle connections, RSS {rss_before} -> {rss_after} KB: "
        f"{figures.memory_kb_per_conn:.1f} KB each {'; '.join(errors[:3])}"
    )


async def _measure_knee(
    server: Server, args: argparse.Namespace, figures: ServerFigures, deflate: bool
) -> None:
    for rate in KNEE_RATES:
        await asyncio.sleep(1)
        result = await _rate(server, KNEE_CLIENTS, rate, args.knee_duration, deflate)
        step = KneeStep(rate, result)
        if not step.passed:
            # One retry: a single stall elsewhere on a shared machine should not end the sweep.
            log(f"{server.name}: knee {KNEE_CLIENTS}x{rate:g}/s missed; retrying once")
            await asyncio.sleep(1)
            result = await _rate(server, KNEE_CLIENTS, rate, args.knee_duration, deflate)
            step = KneeStep(rate, result)
        figures.knee_steps.append(step)
        log(
            f"{server.name}: knee {KNEE_CLIENTS}x{rate:g}/s p99 {result.p99_ms:.1f} ms "
            f"delivered {result.delivered_ratio:.2%} cpu {result.server_cpu_pct:.0f}% "
            f"(clients {result.loadgen_cpu_pct:.0f}%) {'ok' if step.passed else 'MISS'}"
        )
        if not step.passed:
            break


# -- report ----------------------------------------------------------------------------------

NA = "n/a"


def _num(value: float, digits: int = 1) -> str:
    return NA if math.isnan(value) else f"{value:.{digits}f}"


def _ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def _versions() -> str:
    node = shutil.which("node")
    node_version = "absent"
    if node:
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    packages = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("pycrdt", "uvicorn", "websockets", "starlette")
    )
    return f"Python {platform.python_version()}, Node {node_version}; {packages}"


@dataclass(frozen=True)
class Row:
    label: str
    get: Callable[[ServerFigures], float]
    digits: int = 1
    ratio: bool = True


def _rows(storm_clients: int) -> list[Row]:
    rows: list[Row] = []
    for clients, rate in RATE_SCENARIOS:
        key = (clients, rate)
        label = f"{clients} x {rate:g}/s"
        rows += [
            Row(f"{label}: p50 (ms)", lambda f, k=key: f.rate[k].p50_ms),
            Row(f"{label}: p99 (ms)", lambda f, k=key: f.rate[k].p99_ms),
            Row(
                f"{label}: delivered (%)",
                lambda f, k=key: 100 * f.rate[k].delivered_ratio,
                digits=2,
                ratio=False,
            ),
            Row(f"{label}: server CPU (%)", lambda f, k=key: f.rate[k].server_cpu_pct, digits=0),
        ]
    storm = f"storm {storm_clients}"
    return [
        *rows,
        Row(f"{storm}: all synced (s), median run", lambda f: _storm(f).total_s, digits=2),
        Row(f"{storm}: all synced (s), fastest run", lambda f: f.storm_times()[0], digits=2),
        Row(f"{storm}: all synced (s), slowest run", lambda f: f.storm_times()[-1], digits=2),
        Row(f"{storm}: p99 per client (ms), median run", lambda f: _storm(f).p99_ms),
        Row(
            f"{storm}: server CPU (s), median run",
            lambda f: f.storm_round().server_cpu_s,
            digits=2,
        ),
        Row(
            f"{storm}: load generator CPU (s), median run",
            lambda f: f.storm_round().clients_cpu_s,
            digits=2,
            ratio=False,
        ),
        Row(
            f"{storm} again, room live: all synced (s), median run",
            lambda f: _storm(f, live=True).total_s,
            digits=2,
        ),
        Row(
            f"{storm}: clients synced, fewest in a run",
            lambda f: min((r.cold.synced for r in f.storm_rounds), default=math.nan),
            digits=0,
            ratio=False,
        ),
        Row(f"knee, {KNEE_CLIENTS} clients (edits/s per client)", lambda f: f.knee, digits=0),
        Row("memory per idle connection (KB)", lambda f: f.memory_kb_per_conn),
    ]


def _storm(figures: ServerFigures, *, live: bool = False) -> StormResult:
    storm_round = figures.storm_round(live=live)
    return storm_round.live if live else storm_round.cold


def _cell(figures: ServerFigures | None, get: Callable[[ServerFigures], float]) -> float:
    if figures is None:
        return math.nan
    try:
        return float(get(figures))
    except LookupError:
        return math.nan


def _main_table(figures: dict[str, ServerFigures], storm_clients: int) -> list[str]:
    names = [n for n in SERVERS if n in figures]
    ours, ref, bare = (figures.get(n) for n in SERVERS)
    header = ["metric", *(LABELS[n] for n in names), "ours / reference", "ours / bare"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in _rows(storm_clients):
        cells = []
        for name in names:
            text = _num(_cell(figures[name], row.get), row.digits)
            if row.label.startswith("knee") and figures[name].knee_capped:
                text = ">= " + text  # Passed every step of the sweep.
            cells.append(text)
        mine = _cell(ours, row.get)
        ratios = ["", ""]
        if row.ratio:
            ratios = [
                _num(_ratio(mine, _cell(ref, row.get)), 2),
                _num(_ratio(mine, _cell(bare, row.get)), 2),
            ]
        lines.append("| " + " | ".join([row.label, *cells, *ratios]) + " |")
    return lines


def _knee_table(figures: dict[str, ServerFigures]) -> list[str]:
    names = [n for n in SERVERS if n in figures]
    lines = [
        "| edits/s per client | " + " | ".join(LABELS[n] for n in names) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for rate in KNEE_RATES:
        cells = []
        for name in names:
            step = next((s for s in figures[name].knee_steps if s.rate_per_s == rate), None)
            if step is None:
                cells.append("")
                continue
            r = step.result
            verdict = "" if step.passed else " (miss)"
            cells.append(
                f"p99 {_num(r.p99_ms)} ms, {_num(100 * r.delivered_ratio, 2)} %, "
                f"CPU {_num(r.server_cpu_pct, 0)} % (clients {_num(r.loadgen_cpu_pct, 0)} %)"
                f"{verdict}"
            )
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    return lines


def _target(label: str, value: float, ok: bool, goal: str) -> str:
    verdict = NA if math.isnan(value) else ("met" if ok else "MISSED")
    return f"- {label}: {_num(value, 2)} (target {goal}): **{verdict}**"


def _targets(figures: dict[str, ServerFigures]) -> list[str]:
    ours, ref, bare = (figures.get(n) for n in SERVERS)
    targets = []
    if ours is not None and ref is not None:
        for key in ((10, 10.0), (50, 2.0)):
            ratio = _ratio(
                _cell(ours, lambda f, k=key: f.rate[k].p99_ms),
                _cell(ref, lambda f, k=key: f.rate[k].p99_ms),
            )
            delivered = _cell(ours, lambda f, k=key: f.rate[k].delivered_ratio)
            targets.append(
                _target(
                    f"p99 at {key[0]} x {key[1]:g}/s, ours / reference "
                    f"(ours delivered {_num(100 * delivered, 2)} %)",
                    ratio,
                    ratio <= 1 and delivered >= KNEE_DELIVERED,
                    "<= 1.00 with >= 99 % delivered",
                )
            )
        ratio = _ratio(
            _cell(ours, lambda f: _storm(f).total_s), _cell(ref, lambda f: _storm(f).total_s)
        )
        targets.append(
            _target("storm time (median run), ours / reference", ratio, ratio <= 1, "<= 1.00")
        )
    if ours is not None and bare is not None and ours.knee_steps and bare.knee_steps:
        ratio = _ratio(ours.knee, bare.knee)
        capped = " (both passed the whole sweep)" if ours.knee_capped and bare.knee_capped else ""
        targets.append(_target(f"knee, ours / bare{capped}", ratio, ratio >= 0.8, ">= 0.80"))
    if ours is not None:
        mem = ours.memory_kb_per_conn
        targets.append(_target("memory per idle connection (KB)", mem, mem <= 20, "<= 20"))
    return targets


def report(figures: dict[str, ServerFigures], args: argparse.Namespace, elapsed_s: float) -> str:
    names = [n for n in SERVERS if n in figures]
    compression = ", ".join(
        f"{LABELS[n]}: {next(iter(figures[n].rate.values())).extensions}"
        for n in names
        if figures[n].rate
    )
    clients = (
        "without compression" if args.no_deflate else "offering permessage-deflate as browsers do"
    )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# Sync benchmark",
            "",
            f"`python -m bench.sync_bench` on {when}: {os.cpu_count()} CPUs, {_versions()}.",
            f"Rate scenarios {args.duration:g} s each, knee steps {args.knee_duration:g} s, "
            f"{args.storm_clients} clients in the storm; clients {clients} "
            f"(negotiated: {compression}); {args.placement}. Whole run {elapsed_s:.0f} s; "
            "load average "
            f"{args.load_before:.1f} before, {os.getloadavg()[0]:.1f} after (the benchmark "
            "itself adds about 1-2).",
            *(
                [f"Our server ran with {', '.join(f'{k}={v}' for k, v in args.ours_env.items())}."]
                if args.ours_env
                else []
            ),
            "Latency is send-to-receive of each edit at every other client; delivered counts "
            "those deliveries against (edits sent x other clients). Memory is the server's RSS "
            "growth with that many connections open and idle, per connection.",
            "",
            *_main_table(figures, args.storm_clients),
            "",
            "## Targets",
            "",
            *_targets(figures),
            "",
            f"## Knee sweep ({KNEE_CLIENTS} clients; pass: p99 < {KNEE_P99_MS:g} ms and "
            f">= {KNEE_DELIVERED:.0%} delivered)",
            "",
            "CPU is the server process's, in % of one core; clients is the load generator's "
            "(all clients run in one process: near 100 % it, not the server, sets the pace).",
            "",
            *_knee_table(figures),
            "",
        ]
    )


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    args.load_before = os.getloadavg()[0]
    split = None if args.no_pin else split_cpus()
    if split is not None:
        loadgen_cpus, server_cpus = split
        pin_servers(server_cpus)
        os.sched_setaffinity(0, loadgen_cpus)
    args.placement = (
        f"load generator on CPU {_cpus(loadgen_cpus)}, server under test on CPU "
        f"{_cpus(server_cpus)}"
        if split is not None
        else "load generator and server placed by the scheduler (not pinned)"
    )
    figures: dict[str, ServerFigures] = {}
    with tempfile.TemporaryDirectory(prefix="flowai-bench-") as tmp:
        try:
            async with contextlib.AsyncExitStack() as stack:
                # Every server runs throughout (idle ones use no CPU), so that the storms of
                # all three can take turns.
                servers: dict[str, Server] = {}
                for name in args.servers:
                    log(f"starting {LABELS[name]}")
                    server = await stack.enter_async_context(
                        STARTERS[name](Path(tmp), args.ours_env)
                    )
                    log(f"{name}: pid {server.pid}, port {server.port}, rss {server.rss_kb()} KB")
                    servers[name] = server
                rooms: dict[str, list[RoomUrls]] = {}
                rooms_made = 0.0
                for name, server in servers.items():
                    figures[name], rooms[name], made = await prepare(server, args)
                    rooms_made = max(rooms_made, made)
                if "storm" in args.scenarios:
                    await measure_storms(servers, rooms, figures, args, rooms_made)
                for name, server in servers.items():
                    await measure_knee(server, args, figures[name])
        except Exception as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            for log_file in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log_file.name}", file=sys.stderr)
                print(log_file.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    text = report(figures, args, time.monotonic() - started)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"written to {args.output}")
    return 0


def _cpus(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sync_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        type=lambda text: [s for s in text.split(",") if s],
        help="comma-separated subset of: " + ", ".join(SERVERS),
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate scenario")
    parser.add_argument("--knee-duration", type=float, default=5.0, help="seconds per knee step")
    parser.add_argument("--storm-clients", type=int, default=500)
    parser.add_argument(
        "--storm-rounds",
        type=int,
        default=7,
        help="storms per server, each on its own room (the median run is reported)",
    )
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        type=lambda text: [s for s in text.split(",") if s],
        help="comma-separated subset of: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="FLOWAI_NAME=VALUE",
        help="extra setting for our server, e.g. FLOWAI_GROUP_COMMIT_MS=5 (repeatable)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not put the load generator and the server under test on separate CPUs",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.storm_rounds < 1:
        parser.error("--storm-rounds must be at least 1")
    for option, allowed in (("servers", SERVERS), ("scenarios", SCENARIOS)):
        unknown = set(getattr(args, option)) - set(allowed)
        if unknown:
            parser.error(f"unknown {option}: {', '.join(sorted(unknown))}")
    overrides = [item.partition("=") for item in args.ours_env]
    if any(not name.startswith("FLOWAI_") or not sep for name, sep, _ in overrides):
        parser.error("--ours-env takes FLOWAI_NAME=VALUE")
    args.ours_env = {name: value for name, _, value in overrides}
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

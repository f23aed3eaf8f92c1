"""Persistence benchmark: load time over a long history, compaction, append throughput and
save latency through a running server, and the append headroom over the sync knee.

    python -m bench.persistence_bench     (from the repository root, in the virtualenv)

Every part runs on a fresh PostgreSQL database on the server the tests use
(``FLOWAI_TEST_ADMIN_DSN``, by default ``postgresql://postgres@127.0.0.1:5432/postgres``).

1. History. ``--history`` (100,000) small timeline edits (a clip moved, trimmed or re-levelled,
   now and then one added or deleted) from four simulated collaborators who see each other's
   edits at once, appended with ``PgDocumentStore.append`` in batches of 1,000. Load time is
   ``store.load`` plus applying every part into a fresh ``Doc``, before and after
   ``store.compact``; also the compaction time and the stored bytes before and after.
2. Append. ``flowai serve`` as a subprocess on a fresh database per scenario. ``--clients``
   (50) writers spread over ``--rooms`` (10) projects connect with ``?saved=1``; each makes
   one small edit after another on a fixed schedule for ``--duration`` seconds: 4, 40, 100,
   200 and 400 updates/s per writer (200 to 20,000 in total; the default limit is 500
   messages/s per connection) with ``FLOWAI_GROUP_COMMIT_MS`` 20 (the default), and 40 and
   100 with 50. The writers are Node processes (``bench/node/writers.mjs``, ``--generators``
   of them, 1 by default), which time every update themselves; ``--generator python`` runs
   them in this process instead, whose own event loop then becomes the slowest part of the
   measurement above about 2,000 updates/s. Persisted is what the database holds (rows in
   ``doc_updates`` plus ``merged_count`` in ``doc_states``), counted when sending starts and
   when it stops, so persisted/s is what committed within the window; the report names the
   first rate where it stops following sent/s. Save latency is, per update, the time from
   sending it to the first ``saved`` message whose state vector covers it. The writers do
   not apply what they receive, so they stay cheap; the Node writers' own event loop delay
   is reported beside, to show they kept up.
3. Knee. ``bench.sync_bench``'s knee (10 clients in one room, the highest per-client rate
   with p99 propagation < 100 ms and >= 99 % delivered) on a server with default settings,
   and again with compaction kept out of the run (``FLOWAI_COMPACT_UPDATES_MAX`` and
   ``FLOWAI_COMPACT_BYTES_MAX`` out of reach; every update is still appended). The server has
   no setting that turns persistence off, so the report gives the headroom instead: the
   append rate the database absorbed in part 2 over the rate the knee asks of it.

Prints a markdown report and writes it to ``bench/results/persistence.md``. Every loop is
bounded by count or deadline; the whole run takes about five minutes on two cores, half of it
compacting the long history. Figures from a machine busy with other work are noisy: the
report gives the load average around each part.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import websockets
from pycrdt import Doc, TransactionEvent

from bench import node_gen
from bench.client import YWebSocketClient, create_project
from bench.loadgen import RateResult, percentile, run_rate
from bench.sync_bench import KNEE_CLIENTS, KNEE_DELIVERED, KNEE_P99_MS, KNEE_RATES
from crdt.protocol import (
    Saved,
    SyncStep1,
    decode_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)
from crdt.timeline import (
    add_clip,
    add_track,
    delete_clip,
    init_project,
    move_clip,
    read_timeline,
    set_clip_volume,
    trim_clip,
)
from persistence.db import Database
from persistence.documents import PgDocumentStore
from server.auth import mint_token
from tests.support import pg
from tests.support.process import ServerProcess
from tests.support.server import TEST_SECRET
from tests.support.yclient import decode_state_vector

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "persistence.md"

HISTORY_COLLABORATORS = 4
HISTORY_CLIPS = 20
APPEND_BATCH = 1_000
LOAD_TARGET_S = 0.5
SAVED_P99_TARGET_MS = 50.0
HEADROOM_TARGET = 1 / 0.8  # Persistence may take at most 20 % of the knee.
# (group commit ms, updates/s per client); the number of clients is --clients.
APPEND_SCENARIOS = (
    (20, 4.0),
    (20, 40.0),
    (20, 100.0),
    (20, 200.0),
    (20, 400.0),
    (50, 40.0),
    (50, 100.0),
)
# Persisting "follows" sending while it commits at least this share of the rate in the window.
FOLLOWS = 0.95
# Compaction thresholds no run reaches: the room compacts only when it unloads.
NO_COMPACTION = {
    "FLOWAI_COMPACT_UPDATES_MAX": str(10**12),
    "FLOWAI_COMPACT_BYTES_MAX": str(10**15),
}
DRAIN_S = 5.0
# After the writers' first edits, long enough for the work that follows edits once they pause
# (the projection, an automatic version: ``FLOWAI_SETTLE_MS``, 1 s) to be over before the run.
SETTLE_S = 1.5
CONNECT_TIMEOUT_S = 30.0
OWNER = "bench-owner"

clock = time.perf_counter
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _cpu_s(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU time all processes on this machine used so far (``/proc/stat``), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU used over a window, in % of one core: the server, the clients (the Node writers, or
    this process for the Python ones) and everything else on the machine apart from the bench
    database's PostgreSQL backends."""

    server_pct: float = math.nan
    clients_pct: float = math.nan
    others_pct: float = math.nan


class CpuMeter:
    def __init__(
        self,
        server_pid: int,
        backend_pids: Sequence[int],
        client_pids: Sequence[int] = (),
    ) -> None:
        self._pids = [server_pid, *backend_pids]
        self._server_pid = server_pid
        # The clients: these processes (the Node writers), else this one.
        self._client_pids = list(client_pids)
        self._start = self._read()

    def _clients_s(self) -> float:
        if not self._client_pids:
            return time.process_time()
        return sum(_cpu_s(pid) for pid in self._client_pids)

    def _read(self) -> tuple[float, float, float, float, float]:
        ours = 0.0
        for pid in self._pids:
            with contextlib.suppress(OSError):  # A backend that exited, or a remote database.
                ours += _cpu_s(pid)
        return (clock(), _cpu_s(self._server_pid), self._clients_s(), ours, _machine_busy_s())

    def stop(self) -> CpuUse:
        end = self._read()
        wall, server, clients, ours, machine = (
            b - a for a, b in zip(self._start, end, strict=True)
        )
        return CpuUse(
            100 * server / wall,
            100 * clients / wall,
            max(0.0, 100 * (machine - ours - clients) / wall),
        )


async def _backend_pids(conn: asyncpg.Connection[Any]) -> list[int]:
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    return [r["pid"] for r in rows]


@contextlib.asynccontextmanager
async def fresh_database(*, migrate: bool) -> AsyncIterator[str]:
    """A new database (migrated if asked; the server migrates its own); yields its DSN."""
    name = pg.fresh_name()
    await pg.create_database(name)
    try:
        if migrate:
            db = await Database.connect(pg.dsn_for(name), min_size=1, max_size=2)
            try:
                await db.migrate()
            finally:
                await db.close()
        yield pg.dsn_for(name)
    finally:
        await pg.drop_database(name)


@contextlib.asynccontextmanager
async def running_server(dsn: str, **env: str) -> AsyncIterator[tuple[ServerProcess, int]]:
    """``flowai serve`` on ``dsn`` with ``env`` on top of the test settings; yields it and its
    pid, and always stops it (SIGTERM: rooms flush and compact), killing it if it hangs."""
    with tempfile.TemporaryDirectory(prefix="flowai-bench-") as data_dir:
        server = ServerProcess(dsn, Path(data_dir))
        server.env.update(env)
        try:
            await server.start(timeout=60)
            assert server.proc is not None
            yield server, server.proc.pid
        finally:
            await server.stop_or_kill()


# -- 1. a long history -----------------------------------------------------------------------


def _random_edit(rng: random.Random, clips: list[str], new_id: str) -> Callable[[Doc[Any]], object]:
    """One small timeline edit; ``clips`` (the live clip ids) is kept up to date."""
    roll = rng.random()
    if roll < 0.01:
        clips.append(new_id)
        start = rng.randrange(600_000)
        return partial(
            add_clip, track_id="t1", kind="video", start_ms=start, duration_ms=900, clip_id=new_id
        )
    if roll < 0.02 and len(clips) > HISTORY_CLIPS // 2:
        return partial(delete_clip, clip_id=clips.pop(rng.randrange(len(clips))))
    clip = rng.choice(clips)
    if roll < 0.7:
        return partial(move_clip, clip_id=clip, start_ms=rng.randrange(600_000))
    if roll < 0.9:
        return partial(trim_clip, clip_id=clip, duration_ms=rng.randrange(1, 60_000))
    return partial(set_clip_volume, clip_id=clip, volume=rng.random())


def build_history(edits: int, seed: int = 1) -> list[bytes]:
    """The updates of a timeline edited ``edits`` times, in the order a server receives them.

    Each update is what a Yjs client sends for one transaction (its own changes only)."""
    rng = random.Random(seed)
    docs: list[Doc[Any]] = [Doc(client_id=100 + i) for i in range(HISTORY_COLLABORATORS)]
    caught: list[bytes] = []

    def on_transaction(event: TransactionEvent) -> None:
        caught.append(event.update)

    author = docs[0]
    with author.transaction():
        init_project(author, "Long history")
        add_track(author, "video", "V1", track_id="t1")
        for n in range(HISTORY_CLIPS):
            add_clip(author, "t1", "video", start_ms=n * 1000, duration_ms=900, clip_id=f"c{n}")
    updates = [author.get_update()]
    for doc in docs[1:]:
        doc.apply_update(updates[0])
    for doc in docs:
        doc.observe(on_transaction)
    clips = [f"c{n}" for n in range(HISTORY_CLIPS)]
    # A few edits change nothing (a clip moved to where it is) and produce no update.
    for n in range(2 * edits):
        if len(updates) >= edits:
            break
        author = docs[n % len(docs)]
        change = _random_edit(rng, clips, f"new{len(updates)}")
        caught.clear()
        change(author)
        if not caught:
            continue
        update = caught[-1]
        caught.clear()  # Applying below notifies the other replicas' observers too.
        for doc in docs:
            if doc is not author:
                doc.apply_update(update)
        caught.clear()
        updates.append(update)
    return updates


def _apply(parts: Sequence[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        for part in parts:
            doc.apply_update(part)
    return doc


@dataclass
class LoadTime:
    fetch_s: float
    apply_s: float

    @property
    def total_s(self) -> float:
        return self.fetch_s + self.apply_s


async def time_load(store: PgDocumentStore, doc_id: str, rounds: int) -> tuple[LoadTime, Doc[Any]]:
    """Median of ``rounds`` loads (fetch and apply timed separately) and the last loaded doc."""
    times: list[LoadTime] = []
    doc: Doc[Any] = Doc()
    for _ in range(rounds):
        start = clock()
        parts = await store.load(doc_id)
        fetched = clock()
        doc = _apply(parts)
        times.append(LoadTime(fetched - start, clock() - fetched))
    times.sort(key=lambda t: t.total_s)
    return times[len(times) // 2], doc


@dataclass
class HistoryFigures:
    updates: int = 0
    generate_s: float = math.nan
    append_s: float = math.nan
    log_bytes: int = 0
    load_before: LoadTime | None = None
    compact_s: float = math.nan
    merged_rows: int = 0
    state_bytes: int = 0
    load_after: LoadTime | None = None
    content_kept: bool = False
    doc_encode_s: float = math.nan
    doc_encode_bytes: int = 0


async def measure_history(edits: int) -> HistoryFigures:
    figures = HistoryFigures()
    start = clock()
    updates = build_history(edits)
    figures.generate_s = clock() - start
    figures.updates = len(updates)
    figures.log_bytes = sum(len(u) for u in updates)
    log(
        f"history: {len(updates)} updates, {figures.log_bytes} bytes, "
        f"generated in {figures.generate_s:.1f} s"
    )
    async with fresh_database(migrate=True) as dsn:
        db = await Database.connect(dsn, min_size=1, max_size=4)
        try:
            store = PgDocumentStore(db)
            project_id = uuid.uuid4()
            await db.pool.execute(
                "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, 'u', 't')",
                project_id,
            )
            doc_id = str(project_id)
            start = clock()
            for offset in range(0, len(updates), APPEND_BATCH):
                await store.append(doc_id, updates[offset : offset + APPEND_BATCH])
            figures.append_s = clock() - start
            log(f"history: appended in {figures.append_s:.1f} s")

            figures.load_before, before = await time_load(store, doc_id, 3)
            log(f"history: load before compaction {figures.load_before.total_s:.3f} s")

            # For comparison only: the same log merged by applying it to a Doc and encoding it.
            start = clock()
            figures.doc_encode_bytes = len(_apply(updates).get_update())
            figures.doc_encode_s = clock() - start

            log("history: compacting (store.compact)")
            start = clock()
            result = await store.compact(doc_id)
            figures.compact_s = clock() - start
            figures.merged_rows = result.merged_rows
            figures.state_bytes = result.state_bytes
            log(f"history: compacted {result.merged_rows} rows in {figures.compact_s:.1f} s")

            figures.load_after, after = await time_load(store, doc_id, 5)
            figures.content_kept = read_timeline(after).to_json() == read_timeline(
                before
            ).to_json() and decode_state_vector(after.get_state()) == decode_state_vector(
                before.get_state()
            )
            log(f"history: load after compaction {figures.load_after.total_s:.3f} s")
        finally:
            await db.close()
    return figures


# -- 2. append throughput and save latency through the server -------------------------------


@dataclass
class Tally:
    """What all writers of one scenario share."""

    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)


class Writer(YWebSocketClient):
    """A collaborator who only writes: it moves its own clip on a schedule and times, for
    each update, the first ``saved`` message that covers it. It never applies what others
    send (the frames are read and dropped), so it costs little besides its own edits."""

    label = "writer"
    closed_text = "closed"

    def __init__(self, index: int, url: str, tally: Tally) -> None:
        super().__init__(index, url, tally, open_timeout_s=CONNECT_TIMEOUT_S)
        self.tally = tally
        self.doc: Doc[Any] = Doc()
        self.client_id = self.doc.client_id
        # (own clock once the update is applied, send time), oldest first.
        self.unsaved: deque[tuple[int, float]] = deque()
        self.saved_clock = 0

    def sync_step1(self) -> bytes:
        return encode_sync_step1(self.doc.get_state())

    def on_frame(self, frame: bytes) -> bytes | None:
        if len(frame) < 2:
            return None
        if frame[0] == 0 and frame[1] == 0:  # The server's sync step 1.
            message = decode_message(frame)
            assert isinstance(message, SyncStep1)
            return encode_sync_step2(self.doc.get_update(message.state_vector))
        if frame[0] == 0 and frame[1] == 1:
            self.synced.set()
        elif frame[0] == 100:
            message = decode_message(frame)
            assert isinstance(message, Saved)
            self._saved(message.state_vector)
        return None

    def _saved(self, state_vector: bytes) -> None:
        now = clock()
        durable = decode_state_vector(state_vector).get(self.client_id, 0)
        self.saved_clock = max(self.saved_clock, durable)
        latencies = self.tally.latencies_ms
        unsaved = self.unsaved
        while unsaved and unsaved[0][0] <= durable:
            latencies.append((now - unsaved.popleft()[1]) * 1000)

    async def _send_edit(self, change: Callable[[Doc[Any]], object]) -> bool:
        assert self.ws is not None
        before = self.doc.get_state()
        change(self.doc)
        update = self.doc.get_update(before)
        own_clock = decode_state_vector(self.doc.get_state())[self.client_id]
        self.unsaved.append((own_clock, clock()))
        try:
            await self.ws.send(encode_update(update))
        except websockets.ConnectionClosed:
            self.unsaved.pop()
            return False
        return True

    async def set_up(self) -> None:
        """Add this writer's own track and clip (one update)."""

        def setup(doc: Doc[Any]) -> None:
            with doc.transaction():
                add_track(doc, "video", f"Writer {self.index}", track_id=f"t{self.index}")
                add_clip(
                    doc,
                    f"t{self.index}",
                    "video",
                    start_ms=0,
                    duration_ms=1000,
                    clip_id=f"c{self.index}",
                )

        await self._send_edit(setup)

    async def send_edits(self, count: int, rate_per_s: float, start: float, stop: float) -> None:
        """``count`` moves of this writer's clip at ``rate_per_s`` on a fixed schedule from
        ``start`` (a late edit goes out at once, none is skipped), never after ``stop``."""
        period = 1 / rate_per_s
        due = start + random.uniform(0, period)
        clip = f"c{self.index}"
        for n in range(count):
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if clock() > stop:
                return
            if not await self._send_edit(partial(move_clip, clip_id=clip, start_ms=(n + 1) * 10)):
                return
            self.tally.sent += 1
            due += period


async def _persisted(conn: asyncpg.Connection[Any]) -> int:
    """Every update the database holds: still in the log, or merged into a state."""
    count: int = await conn.fetchval(
        "SELECT (SELECT count(*) FROM doc_updates)"
        " + (SELECT coalesce(sum(merged_count), 0)::bigint FROM doc_states)"
    )
    return count


async def _wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = clock() + timeout_s
    while not predicate():
        if clock() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@dataclass
class AppendFigures:
    group_commit_ms: int
    clients: int
    rooms: int
    rate_per_s: float
    duration_s: float
    connected: int = 0
    sent: int = 0
    persisted_in_window: int = 0
    persisted_after_drain: int = 0
    saved: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    cpu: CpuUse = field(default_factory=CpuUse)
    errors: list[str] = field(default_factory=list)
    # The Node writers' own event loop delay while sending (NaN for the Python writers).
    generator_delay_p99_ms: float = math.nan
    generator_delay_max_ms: float = math.nan

    @property
    def follows(self) -> bool:
        return self.persisted_per_s >= FOLLOWS * self.sent_per_s

    @property
    def sent_per_s(self) -> float:
        return self.sent / self.duration_s

    @property
    def persisted_per_s(self) -> float:
        return self.persisted_in_window / self.duration_s

    @property
    def all_persisted(self) -> bool:
        return self.sent > 0 and self.persisted_after_drain == self.sent


async def _create_project(port: int, token: str) -> str:
    return await create_project(port, token, "Append bench")


async def _open_writers(port: int, clients: int, rooms: int, tally: Tally) -> list[Writer]:
    """``clients`` writers over ``rooms`` new projects, connected, synced and set up (their
    set-up edits saved); returns those that connected."""
    token = mint_token(TEST_SECRET, OWNER)
    urls = [
        f"ws://127.0.0.1:{port}/ws/{await _create_project(port, token)}?saved=1&token={token}"
        for _ in range(rooms)
    ]
    writers = await _connect([Writer(i, urls[i % rooms], tally) for i in range(clients)], tally)
    await asyncio.gather(*(w.set_up() for w in writers))
    if not await _wait_until(lambda: all(not w.unsaved for w in writers), 10):
        tally.error("set-up edits not saved within 10 s")
    tally.latencies_ms.clear()
    await asyncio.sleep(0.5)
    return writers


async def measure_append(
    group_commit_ms: int,
    clients: int,
    rooms: int,
    rate_per_s: float,
    duration_s: float,
    *,
    generator: str = "node",
    generators: int = 1,
    **env: str,
) -> AppendFigures:
    figures = AppendFigures(group_commit_ms, clients, rooms, rate_per_s, duration_s)
    tally = Tally()
    figures.errors = tally.errors
    env = {**env, "FLOWAI_GROUP_COMMIT_MS": str(group_commit_ms)}
    async with fresh_database(migrate=False) as dsn, running_server(dsn, **env) as (server, pid):
        conn = await asyncpg.connect(dsn)
        try:
            if generator == "node":
                await _append_node(figures, tally, server.port, pid, conn, generators)
            else:
                await _append_python(figures, tally, server.port, pid, conn)
        finally:
            await conn.close()
    lat = tally.latencies_ms
    figures.saved = len(lat)
    figures.p50_ms = percentile(lat, 0.50)
    figures.p99_ms = percentile(lat, 0.99)
    figures.max_ms = max(lat, default=math.nan)
    return figures


async def _writer_urls(port: int, clients: int, rooms: int) -> list[str]:
    """One URL per writer, dealt round-robin over ``rooms`` new projects."""
    token = mint_token(TEST_SECRET, OWNER)
    urls = [
        f"ws://127.0.0.1:{port}/ws/{await _create_project(port, token)}?saved=1&token={token}"
        for _ in range(rooms)
    ]
    return [urls[i % rooms] for i in range(clients)]


async def _append_python(
    figures: AppendFigures, tally: Tally, port: int, pid: int, conn: asyncpg.Connection[Any]
) -> None:
    writers = await _open_writers(port, figures.clients, figures.rooms, tally)
    try:
        figures.connected = len(writers)
        count = max(1, round(figures.rate_per_s * figures.duration_s))
        baseline = await _persisted(conn)
        meter = CpuMeter(pid, await _backend_pids(conn))
        start = clock() + 0.05
        stop = start + figures.duration_s + 5
        await asyncio.gather(
            *(w.send_edits(count, figures.rate_per_s, start, stop) for w in writers)
        )
        figures.duration_s = clock() - start
        figures.persisted_in_window = await _persisted(conn) - baseline
        figures.cpu = meter.stop()
        figures.sent = tally.sent
        if not await _wait_until(lambda: all(not w.unsaved for w in writers), DRAIN_S):
            tally.error(f"updates still unsaved {DRAIN_S:g} s after the last send")
        figures.persisted_after_drain = await _persisted(conn) - baseline
    finally:
        await asyncio.gather(*(w.close() for w in writers))


async def _append_node(
    figures: AppendFigures,
    tally: Tally,
    port: int,
    pid: int,
    conn: asyncpg.Connection[Any],
    generators: int,
) -> None:
    """The writers in ``bench/node/writers.mjs`` processes (``--generators``), which time the
    acknowledgements themselves and send back every latency."""
    urls = await _writer_urls(port, figures.clients, figures.rooms)
    gens = await node_gen.start("writers.mjs", generators, cpus=None)
    try:
        inputs = [
            {
                "urls": share,
                "rate_per_s": figures.rate_per_s,
                "duration_s": figures.duration_s,
                "drain_s": DRAIN_S,
                "timeout_ms": CONNECT_TIMEOUT_S * 1000,
                "client": "raw",
            }
            for share in node_gen.split(urls, len(gens))
        ]
        used = gens[: len(inputs)]
        ready = await node_gen.hand_out(used, inputs)
        figures.connected = sum(r["ready"] for r in ready)
        for line in ready:
            for message in line["errors"]:
                tally.error(message)
        await asyncio.sleep(SETTLE_S)
        baseline = await _persisted(conn)
        meter = CpuMeter(pid, await _backend_pids(conn), [g.pid for g in used])
        await node_gen.say_all(used, "go")
        sending = await node_gen.read_all(used, figures.duration_s + 60)
        figures.persisted_in_window = await _persisted(conn) - baseline
        figures.cpu = meter.stop()
        figures.duration_s = max(line["sending_ms"] for line in sending) / 1000
        # Then each reports once everything it sent was saved, or the drain ran out.
        results = await node_gen.read_all(used, DRAIN_S + 60)
        figures.persisted_after_drain = await _persisted(conn) - baseline
        figures.sent = sum(r["sent"] for r in results)
        figures.generator_delay_p99_ms = max(r["loop_delay_p99_ms"] for r in results)
        figures.generator_delay_max_ms = max(r["loop_delay_max_ms"] for r in results)
        for r in results:
            tally.latencies_ms.extend(r["latencies_ms"])
            for message in r["errors"]:
                tally.error(message)
            if r["unsaved"]:
                tally.error(f"{r['unsaved']} updates unsaved {DRAIN_S:g} s after the last send")
        await node_gen.say_all(used, "close")
        await node_gen.read_all(used, 30)
    finally:
        await node_gen.stop_all(gens)


async def _connect(writers: list[Writer], tally: Tally) -> list[Writer]:
    async def one(writer: Writer) -> bool:
        try:
            await writer.connect()
            await asyncio.wait_for(writer.synced.wait(), CONNECT_TIMEOUT_S)
            return True
        except Exception as exc:
            tally.error(f"writer {writer.index}: connect failed: {type(exc).__name__}: {exc}")
            await writer.close()
            return False

    results = await asyncio.gather(*(one(w) for w in writers))
    return [w for w, ok in zip(writers, results, strict=True) if ok]


# -- 3. the sync knee ------------------------------------------------------------------------


@dataclass
class KneeStep:
    rate_per_s: float
    result: RateResult
    cpu: CpuUse

    @property
    def passed(self) -> bool:
        r = self.result
        return (
            r.connected == KNEE_CLIENTS
            and r.p99_ms < KNEE_P99_MS
            and r.delivered_ratio >= KNEE_DELIVERED
        )


def _same_url(url: str, _client: int) -> str:
    return url


async def measure_knee(knee_duration_s: float, **env: str) -> list[KneeStep]:
    """``bench.sync_bench``'s knee sweep against a server with the test settings plus ``env``:
    10 clients in a fresh room per step, up to the first rate that misses twice in a row (a
    miss is run once more, so that a burst of other work on the machine does not end it)."""
    steps: list[KneeStep] = []
    token = mint_token(TEST_SECRET, OWNER)
    label = f" ({', '.join(env)})" if env else ""
    async with fresh_database(migrate=False) as dsn, running_server(dsn, **env) as (server, pid):
        conn = await asyncpg.connect(dsn)
        try:
            for rate in KNEE_RATES:
                for _attempt in range(2):
                    await asyncio.sleep(1)
                    project_id = await _create_project(server.port, token)
                    url = f"ws://127.0.0.1:{server.port}/ws/{project_id}?token={token}"
                    meter = CpuMeter(pid, await _backend_pids(conn))
                    result = await run_rate(
                        partial(_same_url, url), KNEE_CLIENTS, rate, knee_duration_s
                    )
                    step = KneeStep(rate, result, meter.stop())
                    steps.append(step)
                    log(
                        f"knee{label}: {KNEE_CLIENTS}x{rate:g}/s p99 {result.p99_ms:.1f} ms "
                        f"delivered {result.delivered_ratio:.2%} server CPU "
                        f"{step.cpu.server_pct:.0f}% others {step.cpu.others_pct:.0f}% "
                        f"{'ok' if step.passed else 'MISS'}"
                    )
                    if step.passed:
                        break
                if not steps[-1].passed:
                    break
        finally:
            await conn.close()
    return steps


# -- report ----------------------------------------------------------------------------------

NA = "n/a"


def _num(value: float, digits: int = 1) -> str:
    return NA if math.isnan(value) else f"{value:,.{digits}f}"


def _verdict(ok: bool, value: float) -> str:
    return NA if math.isnan(value) else ("met" if ok else "MISSED")


def _history_lines(h: HistoryFigures) -> list[str]:
    before, after = h.load_before, h.load_after
    assert before is not None and after is not None
    load_ok = after.total_s < LOAD_TARGET_S
    return [
        f"## Load over a long history ({h.updates:,} updates, "
        f"{HISTORY_COLLABORATORS} collaborators)",
        "",
        "| metric | value |",
        "|---|---|",
        f"| log payload bytes | {h.log_bytes:,} ({h.log_bytes / h.updates:.1f} per update) |",
        f"| append, batches of {APPEND_BATCH:,} | {_num(h.append_s, 2)} s "
        f"({_num(h.updates / h.append_s, 0)} updates/s) |",
        f"| load before compaction: fetch + apply = total (median of 3) | "
        f"{before.fetch_s:.3f} + {before.apply_s:.3f} = **{before.total_s:.3f} s** |",
        f"| `store.compact` ({h.merged_rows:,} rows) | **{_num(h.compact_s, 2)} s** |",
        f"| state bytes after compaction | {h.state_bytes:,} "
        f"({h.state_bytes / h.log_bytes:.0%} of the log) |",
        f"| load after compaction: fetch + apply = total (median of 5) | "
        f"{after.fetch_s:.3f} + {after.apply_s:.3f} = **{after.total_s:.3f} s** |",
        f"| timeline and state vector identical after compaction | "
        f"{'yes' if h.content_kept else 'NO'} |",
        f"| for comparison: apply the log to one Doc and encode it | "
        f"{_num(h.doc_encode_s, 2)} s, {h.doc_encode_bytes:,} bytes |",
        "",
        f"- load after compaction: {after.total_s:.3f} s (target < {LOAD_TARGET_S:g} s): "
        f"**{_verdict(load_ok, after.total_s)}**",
        "- `store.compact` integrates state and log into a Doc in a worker thread and encodes "
        "it (linear in the log; deleted content is dropped), then verifies by decoding the "
        "result again; rooms compact every 1,000 updates, so a log this long only builds up "
        "when compaction cannot run.",
    ]


def _append_lines(results: list[AppendFigures]) -> list[str]:
    lines = [
        "## Append throughput and save latency through `flowai serve`",
        "",
        "Writers spread evenly over the rooms. Saved is how many updates a `saved` message "
        "confirmed; p50/p99/max are send-to-saved over those. CPU in % of one core over the "
        "sending window; other is everything on the machine but the server, the clients and "
        "the benchmark database's PostgreSQL backends. Writer loop delay: how late the "
        "writers' own event loop ran (p99 / max), which shows whether they kept up.",
        "",
        "| group commit | clients x rate (rooms) | sent/s | persisted/s in window "
        "| persisted after drain / sent | saved | saved p50 (ms) | saved p99 (ms) | max (ms) "
        "| server CPU | clients CPU | other CPU | writer loop delay (ms) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.group_commit_ms} ms | {r.connected} x {r.rate_per_s:g}/s ({r.rooms}) "
            f"| {_num(r.sent_per_s, 0)} | {_num(r.persisted_per_s, 0)} "
            f"| {r.persisted_after_drain:,} / {r.sent:,} | {r.saved:,} "
            f"| {_num(r.p50_ms)} | {_num(r.p99_ms)} | {_num(r.max_ms)} "
            f"| {_num(r.cpu.server_pct, 0)} % | {_num(r.cpu.clients_pct, 0)} % "
            f"| {_num(r.cpu.others_pct, 0)} % "
            f"| {_num(r.generator_delay_p99_ms)} / {_num(r.generator_delay_max_ms)} "
            f"| {'; '.join(r.errors[:2]) or 'none'} |"
        )
    lines.append("")
    at_default = [r for r in results if r.group_commit_ms == 20]
    behind = next((r for r in at_default if not r.follows), None)
    if behind is not None:
        lines.append(
            f"- persisted/s stops following sent/s (below {FOLLOWS:.0%} of it in the window) "
            f"at {_num(behind.sent_per_s, 0)} updates/s sent "
            f"({_num(behind.persisted_per_s, 0)} persisted/s)"
        )
    elif at_default:
        lines.append(
            f"- persisted/s followed sent/s (at least {FOLLOWS:.0%} of it in the window) up to "
            f"{_num(at_default[-1].sent_per_s, 0)} updates/s, the highest rate run"
        )
    for r in results:
        if r.group_commit_ms != 20:
            continue
        ok = r.p99_ms <= SAVED_P99_TARGET_MS and r.all_persisted
        lines.append(
            f"- saved p99 at {r.group_commit_ms} ms group commit, {_num(r.sent_per_s, 0)} "
            f"updates/s: {_num(r.p99_ms)} ms (target <= {SAVED_P99_TARGET_MS:g} ms, everything "
            f"persisted): **{_verdict(ok, r.p99_ms)}**"
        )
    return lines


def _knee(steps: list[KneeStep]) -> float:
    return max((s.rate_per_s for s in steps if s.passed), default=0.0)


def _knee_text(steps: list[KneeStep]) -> str:
    # The sweep ran out of rates without a double miss: the knee is at least the last rate.
    capped = bool(steps) and steps[-1].passed and steps[-1].rate_per_s == KNEE_RATES[-1]
    return f"{'>= ' if capped else ''}{_knee(steps):g}"


def _step_cell(attempts: list[KneeStep]) -> str:
    cells = []
    for step in attempts:
        r, cpu = step.result, step.cpu
        cells.append(
            f"p99 {_num(r.p99_ms)} ms, {_num(100 * r.delivered_ratio, 2)} %, CPU server "
            f"{_num(cpu.server_pct, 0)} % / clients {_num(cpu.clients_pct, 0)} % / others "
            f"{_num(cpu.others_pct, 0)} %{'' if step.passed else ' (miss)'}"
        )
    return "; again: ".join(cells)


def _knee_lines(knees: dict[str, list[KneeStep]], results: list[AppendFigures]) -> list[str]:
    default = knees.get(KNEE_DEFAULT, [])
    lines = [
        f"## Sync knee and append headroom ({KNEE_CLIENTS} clients in one room; pass: p99 < "
        f"{KNEE_P99_MS:g} ms and >= {KNEE_DELIVERED:.0%} delivered)",
        "",
        "CPU in % of one core: the server process, the clients (all in the benchmark's "
        "process) and everything else on the machine. A step that misses is run once more.",
        "",
        "| edits/s per client | " + " | ".join(knees) + " |",
        "|" + "---|" * (len(knees) + 1),
    ]
    for rate in KNEE_RATES:
        cells = [_step_cell([s for s in st if s.rate_per_s == rate]) for st in knees.values()]
        if any(cells):
            lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| knee (edits/s per client) | "
        + " | ".join(_knee_text(st) for st in knees.values())
        + " |",
        "",
    ]
    demand = _knee(default) * KNEE_CLIENTS
    complete = [r for r in results if r.all_persisted]
    best = max(complete, key=lambda r: r.persisted_per_s, default=None)
    if best is None or not demand:
        return [*lines, "- headroom: n/a (no append run persisted everything, or no knee)"]
    headroom = best.persisted_per_s / demand
    # Within the window, persisting trails sending by about one group commit.
    saturated = best.persisted_per_s < 0.95 * best.sent_per_s
    lines += [
        f"- The knee with default settings asks the database to absorb {demand:,.0f} "
        f"updates/s ({_knee(default):g} x {KNEE_CLIENTS}).",
        f"- Part 2 persisted up to {'' if saturated else '>= '}{best.persisted_per_s:,.0f} "
        f"updates/s within the sending window ({best.connected} x {best.rate_per_s:g}/s, "
        f"{best.group_commit_ms} ms group commit, nothing lost, saved p99 "
        f"{_num(best.p99_ms)} ms): {headroom:.1f} x that "
        f"demand{'' if saturated else ' at least (the server kept up; the ceiling is higher)'}."
        f" Headroom of {HEADROOM_TARGET:.2f} x or more would be needed for appends alone to "
        f"stay under 20 % of the knee: **{_verdict(headroom >= HEADROOM_TARGET, headroom)}**.",
        "- Said plainly: this is headroom, not the cost the target is stated in. There is no "
        "setting that turns persistence off, so every knee step ran with it on; the knee "
        "already pays for it, and how much it pays is not measured here. The second column "
        "removes only compaction during the run (the updates are still appended in group "
        "commits), so the gap between the columns is what compaction costs the knee, within "
        "this machine's run-to-run noise.",
        "- A clean way to measure the whole cost: start the same app with the document store "
        "swapped at the composition root (`server.composition.build.build_services` building "
        "`Rooms` over "
        "`persistence.memory.MemoryDocumentStore` instead of `PgDocumentStore`) from a "
        "launcher of the benchmark's own, and run the same sweep against it. A very large "
        "`FLOWAI_GROUP_COMMIT_MS` would not do it: that delays and batches the writes, it "
        "does not remove them.",
    ]
    return lines


def _versions() -> str:
    packages = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("pycrdt", "asyncpg", "uvicorn")
    )
    return f"Python {platform.python_version()}; {packages}"


async def _postgres_version() -> str:
    conn = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version.split()[0]
    finally:
        await conn.close()


def _load_average() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


@dataclass
class Figures:
    history: HistoryFigures | None = None
    appends: list[AppendFigures] = field(default_factory=list)
    knees: dict[str, list[KneeStep]] = field(default_factory=dict)
    # Part name -> the 1/5/15-minute load averages when it started and when it ended.
    load: dict[str, tuple[str, str]] = field(default_factory=dict)


def report(figures: Figures, args: argparse.Namespace, postgres: str, elapsed_s: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "; ".join(f"{part} {a} -> {b}" for part, (a, b) in figures.load.items())
    lines = [
        "# Persistence benchmark",
        "",
        f"`python -m bench.persistence_bench` on {when}: {os.cpu_count()} CPUs shared by the "
        f"server, PostgreSQL {postgres} and the clients; {_versions()}. Appends "
        f"{args.duration:g} s per scenario, knee steps {args.knee_duration:g} s. "
        f"Whole run {elapsed_s:.0f} s.",
        f"Load average (1/5/15 min) at the start and end of each part: {load}. Other work on "
        "the machine shows up as noise in every latency below.",
        "",
    ]
    if figures.history is not None:
        lines += [*_history_lines(figures.history), ""]
    if figures.appends:
        lines += [*_append_lines(figures.appends), ""]
    if figures.knees:
        lines += [*_knee_lines(figures.knees, figures.appends), ""]
    return "\n".join(lines)


KNEE_DEFAULT = "default settings"
KNEE_NO_COMPACTION = "no compaction during the run"


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    postgres = await _postgres_version()
    figures = Figures()
    if "history" in args.parts:
        before = _load_average()
        figures.history = await measure_history(args.history)
        figures.load["history"] = (before, _load_average())
    if "append" in args.parts:
        before = _load_average()
        for group_commit_ms, rate in APPEND_SCENARIOS:
            result = await measure_append(
                group_commit_ms,
                args.clients,
                args.rooms,
                rate,
                args.duration,
                generator=args.generator,
                generators=args.generators,
            )
            figures.appends.append(result)
            log(
                f"append: group commit {group_commit_ms} ms, {result.connected}x{rate:g}/s: "
                f"sent {result.sent_per_s:.0f}/s persisted {result.persisted_per_s:.0f}/s, "
                f"{result.persisted_after_drain}/{result.sent} after drain, saved p50 "
                f"{result.p50_ms:.1f} p99 {result.p99_ms:.1f} ms, CPU server "
                f"{result.cpu.server_pct:.0f}% clients {result.cpu.clients_pct:.0f}% "
                f"others {result.cpu.others_pct:.0f}% "
                f"{'; '.join(result.errors[:3])}"
            )
        figures.load["append"] = (before, _load_average())
    if "knee" in args.parts:
        before = _load_average()
        figures.knees[KNEE_DEFAULT] = await measure_knee(args.knee_duration)
        figures.knees[KNEE_NO_COMPACTION] = await measure_knee(args.knee_duration, **NO_COMPACTION)
        figures.load["knee"] = (before, _load_average())
    text = report(figures, args, postgres, time.monotonic() - started)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"written to {args.output}")
    return 0


PARTS = ("history", "append", "knee")


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(
        prog="bench.persistence_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        type=lambda text: [p for p in text.split(",") if p],
        help="comma-separated subset of: " + ", ".join(PARTS),
    )
    parser.add_argument("--history", type=int, default=100_000, help="updates in the history")
    parser.add_argument("--clients", type=int, default=50, help="writers in the append part")
    parser.add_argument("--rooms", type=int, default=10, help="rooms the writers spread over")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per append run")
    parser.add_argument("--knee-duration", type=float, default=5.0, help="seconds per knee step")
    parser.add_argument(
        "--generator",
        choices=("node", "python"),
        default="node",
        help="where the append part's writers run (node: bench/node/writers.mjs)",
    )
    parser.add_argument(
        "--generators", type=int, default=1, help="Node writer processes in the append part"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())

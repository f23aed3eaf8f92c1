"""Load generator for the sync benchmark: many y-websocket clients in one asyncio event loop.

Each client speaks just enough of the y-websocket protocol to be served like a browser: it
sends sync step 1 on connect, answers the server's step 1 with an (empty) step 2 and counts
itself synced on the first step 2 it receives. Its edits are real Yjs updates made with pycrdt:
each sets the client's own key of the ``bench`` map to a unique ASCII marker ``@@<client>:<seq>@@``.
A string value travels verbatim inside update bytes, whether a server forwards the frame it got
(ours, the bare relay) or re-encodes the update (the Node reference server), so a receiver finds
every marker with one regex scan of the raw frame and looks up its send time in a dict shared
by all clients of the run. Nothing is decoded or applied on receive, which keeps the client
side cheap enough that the server is what gets measured.

Every wait is bounded by time and every loop by count. Usable as a library (``run_rate``,
``connect_storm``) or from the command line:

    python -m bench.loadgen rate --url ws://127.0.0.1:8100/room --clients 10 --rate 10
    python -m bench.loadgen storm --url ws://127.0.0.1:8100/room --clients 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import websockets
from pycrdt import Doc, Map, TransactionEvent, create_update_message

from bench.client import EMPTY_SYNC_STEP2, YWebSocketClient

SYNC_STEP1_PREFIX = b"\x00\x00"
SYNC_STEP2_PREFIX = b"\x00\x01"
MARKER = re.compile(rb"@@(\d+):\d+@@")

clock = time.perf_counter


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Run:
    """What all clients of one run share: send times, receive latencies, counters."""

    sent_at: dict[bytes, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)


class BenchClient(YWebSocketClient):
    def __init__(self, index: int, url: str, run: Run, *, deflate: bool = True) -> None:
        super().__init__(index, url, run, deflate=deflate)
        self.run = run
        self.tag = str(index).encode()
        self.synced_at = math.nan
        self.seen: set[bytes] = set()
        self._doc: Doc[Any] | None = None
        self._updates: list[bytes] = []
        self._seq = 0

    def on_frame(self, frame: bytes) -> bytes | None:
        reply = None
        if frame.startswith(SYNC_STEP1_PREFIX):
            reply = EMPTY_SYNC_STEP2
        elif frame.startswith(SYNC_STEP2_PREFIX) and not self.synced.is_set():
            self.synced_at = clock()
            self.synced.set()
        # Step 2 and updates both carry document content.
        if frame[:1] != b"\x00" or b"@@" not in frame:
            return reply
        run = self.run
        now = clock()
        for match in MARKER.finditer(frame):
            if match.group(1) == self.tag:
                continue  # Our own edit echoed back (the reference server does).
            marker = match.group(0)
            sent_at = run.sent_at.get(marker)
            if sent_at is None or marker in self.seen:
                continue
            self.seen.add(marker)
            run.delivered += 1
            run.latencies_ms.append((now - sent_at) * 1000)
        return reply

    def _edit_frame(self) -> tuple[bytes, bytes]:
        if self._doc is None:
            self._doc = Doc()
            self._doc.observe(self._on_transaction)
        marker = f"@@{self.index}:{self._seq}@@"
        self._seq += 1
        with self._doc.transaction():
            self._doc.get("bench", type=Map)[f"c{self.index}"] = marker
        update = self._updates.pop()
        return marker.encode(), create_update_message(update)

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._updates.append(event.update)

    async def send_edits(self, count: int, rate_per_s: float, start: float, stop: float) -> None:
        """Send ``count`` edits at ``rate_per_s`` from ``start`` (a ``clock()`` time), paced on
        a fixed schedule (a late edit goes out at once; none is skipped) and never after ``stop``.
        """
        assert self.ws is not None
        period = 1 / rate_per_s
        due = start + random.uniform(0, period)  # Spread clients over the period.
        for _ in range(count):
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if clock() > stop:
                return
            marker, frame = self._edit_frame()
            self.run.sent_at[marker] = clock()
            try:
                await self.ws.send(frame)
            except websockets.ConnectionClosed:
                del self.run.sent_at[marker]
                return
            self.run.sent += 1
            due += period


async def _connect_all(
    clients: Sequence[BenchClient], run: Run, timeout_s: float
) -> list[BenchClient]:
    """Connect and wait for sync step 2; returns the clients that made it in time."""

    async def one(client: BenchClient) -> bool:
        try:
            await client.connect(timeout_s)
            await client.synced.wait()
            return True
        except Exception as exc:
            run.error(f"client {client.index}: connect failed: {type(exc).__name__}: {exc}")
            return False

    tasks = [asyncio.create_task(one(c)) for c in clients]
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        run.error(f"{len(pending)} clients not synced after {timeout_s:.0f} s")
    return [c for c, t in zip(clients, tasks, strict=True) if t in done and t.result()]


async def close_all(clients: Sequence[BenchClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


@dataclass
class RateResult:
    clients: int
    rate_per_s: float
    duration_s: float
    connected: int
    sent: int
    expected: int
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    extensions: str
    errors: list[str]
    # CPU over the send window and drain, in % of one core: the server's (when the caller
    # gave a probe) and this process's (all clients; near 100 % it sets the pace).
    server_cpu_pct: float
    loadgen_cpu_pct: float

    @property
    def delivered_ratio(self) -> float:
        return self.delivered / self.expected if self.expected else math.nan


async def run_rate(
    url_for: Callable[[int], str],
    clients: int,
    rate_per_s: float,
    duration_s: float,
    *,
    drain_s: float = 3.0,
    connect_timeout_s: float = 30.0,
    deflate: bool = True,
    server_cpu_s: Callable[[], float] | None = None,
) -> RateResult:
    """``clients`` clients in one room each send ``rate_per_s`` edits for ``duration_s``;
    every edit should reach every other client. Latency is send-to-receive per delivery.
    ``server_cpu_s`` reads the server's CPU time, to report its load over the same window."""
    run = Run()
    bench = [BenchClient(i, url_for(i), run, deflate=deflate) for i in range(clients)]
    try:
        with _gc_paused():
            return await _measure_rate(
                run, bench, rate_per_s, duration_s, drain_s, connect_timeout_s, server_cpu_s
            )
    finally:
        await close_all(bench)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while measuring: a full collection over the run's bookkeeping (hundreds of
    thousands of objects at high rates) would stall every client at once and show up as
    server latency. Nothing here relies on cycles being freed within a run."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _measure_rate(
    run: Run,
    bench: list[BenchClient],
    rate_per_s: float,
    duration_s: float,
    drain_s: float,
    connect_timeout_s: float,
    server_cpu_s: Callable[[], float] | None,
) -> RateResult:
    connected = await _connect_all(bench, run, connect_timeout_s)
    await asyncio.sleep(0.5)  # Let greetings (step 1 replies, awareness) settle.
    count = max(1, round(rate_per_s * duration_s))
    start = clock() + 0.05
    stop = start + duration_s * 2 + 5
    server_before = server_cpu_s() if server_cpu_s else math.nan
    own_before = time.process_time()
    await asyncio.gather(*(c.send_edits(count, rate_per_s, start, stop) for c in connected))
    expected = run.sent * (len(connected) - 1)
    deadline = clock() + drain_s
    while run.delivered < expected and clock() < deadline:
        await asyncio.sleep(0.01)
    window = clock() - start
    server_cpu = (server_cpu_s() if server_cpu_s else math.nan) - server_before
    return RateResult(
        clients=len(bench),
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        connected=len(connected),
        sent=run.sent,
        expected=expected,
        delivered=run.delivered,
        p50_ms=percentile(run.latencies_ms, 0.50),
        p99_ms=percentile(run.latencies_ms, 0.99),
        max_ms=max(run.latencies_ms, default=math.nan),
        extensions=bench[0].extensions,
        errors=run.errors,
        server_cpu_pct=100 * server_cpu / window,
        loadgen_cpu_pct=100 * (time.process_time() - own_before) / window,
    )


@dataclass
class StormResult:
    clients: int
    synced: int
    total_s: float
    p50_ms: float
    p99_ms: float
    errors: list[str]


async def connect_storm(
    url_for: Callable[[int], str], clients: int, *, timeout_s: float = 60.0, deflate: bool = True
) -> tuple[StormResult, list[BenchClient]]:
    """Open ``clients`` connections at once; time until each has its sync step 2.

    Returns the clients still open, so the caller can measure them idle and must close them."""
    run = Run()
    bench = [BenchClient(i, url_for(i), run, deflate=deflate) for i in range(clients)]
    with _gc_paused():
        start = clock()
        synced = await _connect_all(bench, run, timeout_s)
    times_ms = [(c.synced_at - start) * 1000 for c in synced]
    result = StormResult(
        clients=clients,
        synced=len(synced),
        total_s=max(times_ms, default=math.nan) / 1000 if len(synced) == clients else math.nan,
        p50_ms=percentile(times_ms, 0.50),
        p99_ms=percentile(times_ms, 0.99),
        errors=run.errors,
    )
    return result, bench


async def connect_in_batches(
    url_for: Callable[[int], str],
    clients: int,
    *,
    batch: int = 50,
    timeout_s: float = 60.0,
    deflate: bool = True,
) -> tuple[list[BenchClient], list[str]]:
    """Open ``clients`` synced connections ``batch`` at a time (no storm, so the server's
    memory afterwards is what idle connections hold rather than a storm's peak). Returns every
    client created (the caller closes them all) and the errors met."""
    run = Run()
    bench = [BenchClient(i, url_for(i), run, deflate=deflate) for i in range(clients)]
    deadline = clock() + timeout_s
    for first in range(0, clients, batch):
        remaining = deadline - clock()
        if remaining <= 0:
            run.error(f"only {first} of {clients} clients opened in {timeout_s:.0f} s")
            break
        await _connect_all(bench[first : first + batch], run, remaining)
    return bench, run.errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rate = sub.add_parser("rate", help="clients editing at a fixed rate; latency and delivery")
    rate.add_argument("--url", required=True, help="room url (with ?token=... if needed)")
    rate.add_argument("--clients", type=int, default=10)
    rate.add_argument("--rate", type=float, default=10, help="edits per second per client")
    rate.add_argument("--duration", type=float, default=10)
    storm = sub.add_parser("storm", help="many clients connecting at once")
    storm.add_argument("--url", required=True)
    storm.add_argument("--clients", type=int, default=500)
    for command in (rate, storm):
        command.add_argument("--no-deflate", action="store_true", help="do not offer compression")
    args = parser.parse_args(argv)

    async def go() -> dict[str, Any]:
        deflate = not args.no_deflate
        if args.command == "rate":
            result = await run_rate(
                lambda _i: args.url, args.clients, args.rate, args.duration, deflate=deflate
            )
            return {**asdict(result), "delivered_ratio": result.delivered_ratio}
        storm_result, clients = await connect_storm(
            lambda _i: args.url, args.clients, deflate=deflate
        )
        await close_all(clients)
        return asdict(storm_result)

    print(json.dumps(asyncio.run(go()), indent=2))


if __name__ == "__main__":
    main()

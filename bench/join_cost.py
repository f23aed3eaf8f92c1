"""CPU per join of our websocket path, in-process: no network, no load generator.

    python -m bench.join_cost            (from the repository root, in the virtualenv)

A join storm is bound by the server's CPU per join (see the README). This measures that cost on
its own, so that changes to the join path can be compared without the noise of a storm: the
real app (``flowai serve``'s, on a fresh PostgreSQL database) admits ``--joins`` connections to
one live room, each fed its upgrade request and a y-websocket client's sync step 1 straight
into ``server.ws.connection.WebSocketConnection.data_received`` over a transport that
records what is written. Every join must be answered (101, greeting, sync step 2). Rounds:

- new tokens: every join presents a token the server has not verified yet;
- cached tokens: the same tokens again (a reconnect storm);
- bare relay: ``bench.bare_relay``'s connection class driven the same way (no token, no
  membership, no document): the floor of the stack.

Prints per-join CPU time (``time.process_time``; the median of ``--rounds`` rounds for each
kind) and writes ``bench/results/join_cost.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bare_relay import RelayConnection
from server.auth import mint_token
from server.ws.connection import WebSocketConnection
from tests.conftest import make_settings
from tests.support import pg
from tests.support.server import TEST_SECRET, RunningServer, run_server
from tests.support.transport import RecordingTransport, client_frame, upgrade_request
from tests.support.yclient import YClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "join_cost.md"
SYNC_STEP1 = client_frame(b"\x00\x00\x01\x00")  # empty state vector: "send me everything"


async def _drive(
    make: Callable[[], tuple[asyncio.Protocol, RecordingTransport]], requests: list[bytes]
) -> tuple[float, int]:
    """Per-join CPU microseconds, and how many joins were answered (101 and sync step 2)."""
    joins = [make() for _ in requests]
    started = time.process_time()
    for (conn, _), request in zip(joins, requests, strict=True):
        conn.data_received(request)
        conn.data_received(SYNC_STEP1)
    # Frames sent within a turn of the event loop are written at its end: part of the cost.
    await asyncio.sleep(0)
    spent = time.process_time() - started
    answered = sum(len(t.writes) >= 2 and not t.closed for _, t in joins)
    for conn, _ in joins:
        conn.connection_lost(None)
    return spent / len(requests) * 1e6, answered


def _ours(server: RunningServer) -> tuple[asyncio.Protocol, RecordingTransport]:
    uv = server.server
    conn = WebSocketConnection(
        config=uv.config, server_state=uv.server_state, app_state=uv.lifespan.state
    )
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport


def _bare() -> tuple[asyncio.Protocol, RecordingTransport]:
    conn = RelayConnection(None, None, None)
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport


async def measure(joins: int, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    database = pg.fresh_name()
    await pg.create_database(database)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = make_settings(
                Path(tmp), database_url=pg.dsn_for(database), user_connections_max=joins
            )
            async with run_server(settings) as server:
                project = await server.create_project("owner")
                users = [f"joiner-{i}" for i in range(joins)]
                async with server.client("owner") as http:

                    async def add(user: str) -> None:
                        added = await http.post(
                            f"/api/projects/{project}/members",
                            json={"user_id": user, "role": "editor"},
                        )
                        added.raise_for_status()

                    for first in range(0, joins, 50):
                        await asyncio.gather(*(add(u) for u in users[first : first + 50]))
                keeper = await YClient(server.ws_url(project, "owner")).connect()
                await keeper.wait_synced()  # the room stays live throughout

                def requests(ttl_s: int) -> list[bytes]:
                    base = f"ws://127.0.0.1:{server.port}/ws/{project}?token="
                    return [
                        upgrade_request(base + mint_token(TEST_SECRET, u, ttl_s=ttl_s))
                        for u in users
                    ]

                async def run(kind: str, batch: list[bytes]) -> None:
                    per_join, answered = await _drive(lambda: _ours(server), batch)
                    if answered != joins:
                        raise RuntimeError(f"{kind}: only {answered} of {joins} joins answered")
                    figures.setdefault(kind, []).append(per_join)
                    log(f"{kind}: {per_join:.1f} us per join")

                for round_ in range(rounds):
                    # A different lifetime makes different tokens for the same users.
                    batch = requests(3600 - round_)
                    await run("new tokens", batch)
                    await asyncio.sleep(0.5)  # the closes' room work
                    await run("cached tokens", batch)
                    await asyncio.sleep(0.5)
                await keeper.close()
    finally:
        await pg.drop_database(database)
    bare = [upgrade_request(f"ws://127.0.0.1:1/bench?token={'x' * 250}") for _ in range(joins)]
    for _ in range(rounds):
        per_join, answered = await _drive(_bare, bare)
        if answered != joins:
            raise RuntimeError(f"bare relay: only {answered} of {joins} joins answered")
        figures.setdefault("bare relay", []).append(per_join)
    return figures


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def report(figures: dict[str, list[float]], joins: int, rounds: int) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# CPU per join",
        "",
        f"`python -m bench.join_cost` on {when}: {joins} joins of one live room per round, "
        f"{rounds} rounds; each join is an upgrade request and a sync step 1, handled in "
        "process with no network (CPU time, the median of the rounds).",
        "",
        "| joins | CPU per join (µs) | all rounds (µs) |",
        "|---|---|---|",
    ]
    for kind, values in figures.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {kind} | {statistics.median(values):.0f} | {spread} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.join_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.joins < 1 or args.rounds < 1:
        parser.error("--joins and --rounds must be at least 1")
    figures = asyncio.run(measure(args.joins, args.rounds))
    text = report(figures, args.joins, args.rounds)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

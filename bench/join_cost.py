"""CPU per join of our websocket path, in-process: no network, no load generator.

    python -m bench.join_cost            (from the repository root, in the virtualenv)

A join storm is bound by the server's CPU per join (see the README). This measures that cost on
its own, so that changes to the join path can be compared without the noise of a storm: the
real app (``flowai serve``'s, on a fresh PostgreSQL database) admits ``--joins`` connections to
one live room, each fed its upgrade request and then, in one read, a y-websocket client's sync
step 1 and its answer to ours (an empty step 2), straight into
``server.ws.connection.WebSocketConnection.data_received`` over a transport that records what
is written (the joiners that wait for a cold room to open send their step 1 alone, before it
opens). Every join must be answered (101, greeting, sync step 2). Rounds:

- new tokens: every join presents a token the server has not verified yet;
- cached tokens: the same tokens again (a reconnect storm);
- cold room, own tokens: ``--cold-joins`` joins, each its own member and new token, of a room
  not in memory: the first opens it (one read of the document and the member list) and the
  others wait for it, as in a storm on a cold room; the CPU includes the load's share that
  runs in this process (asyncpg decoding the rows, building the room);
- cold room, one token: the same with one token for every join (verified once);
- bare relay: ``bench.bare_relay``'s connection class driven the same way (no token, no
  membership, no document): the floor of the stack.

The difference of the two cold kinds is what a join's own new token costs (the reference
server checks none); cold against live is what loading the room adds per join.

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
from typing import Any

from bench.bare_relay import RelayConnection
from server.auth import mint_token
from server.ws.connection import Phase, WebSocketConnection
from tests.conftest import make_settings
from tests.support import pg
from tests.support.server import TEST_SECRET, RunningServer, run_server
from tests.support.transport import RecordingTransport, client_frame, upgrade_request
from tests.support.yclient import YClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "join_cost.md"
SYNC_STEP1 = client_frame(b"\x00\x00\x01\x00")  # empty state vector: "send me everything"
# A joiner of a live room answers the 101 and our step 1 at once: its step 1 and an empty step 2,
# which reach the server in one read (as they did for nearly every joiner of a storm).
STEP1_AND_ANSWER = SYNC_STEP1 + client_frame(b"\x00\x01\x02\x00\x00")
COLD_WAIT_S = 30.0  # a cold room's load, at most
COLD_GRACE_MS = 300  # how long a room with nobody in it stays loaded, here


async def _drive(
    make: Callable[[], tuple[asyncio.Protocol, RecordingTransport]],
    requests: list[bytes],
    answer: bytes = STEP1_AND_ANSWER,
) -> tuple[float, int]:
    """Per-join CPU microseconds, and how many joins were answered (101 and sync step 2)."""
    joins = [make() for _ in requests]
    started = time.process_time()
    for (conn, _), request in zip(joins, requests, strict=True):
        conn.data_received(request)
        conn.data_received(answer)
    # Frames sent within a turn of the event loop are written at its end: part of the cost.
    await asyncio.sleep(0)
    spent = time.process_time() - started
    answered = sum(len(t.writes) >= 2 and not t.closed for _, t in joins)
    _lose(joins)
    return spent / len(requests) * 1e6, answered


async def _drive_cold(server: RunningServer, requests: list[bytes]) -> tuple[float, int]:
    """``_drive`` for a room not in memory: the requests first, then, once the room has opened
    and every join is in it, each client's sync step 1 (a client sends it after the 101)."""
    joins = [_ours(server) for _ in requests]
    started = time.process_time()
    for (conn, _), request in zip(joins, requests, strict=True):
        conn.data_received(request)
    deadline = time.monotonic() + COLD_WAIT_S
    while not all(c.phase >= Phase.JOINED for c, _ in joins) and time.monotonic() < deadline:
        await asyncio.sleep(0.001)  # the room loads; process_time counts no waiting
    before = [len(t.writes) for _, t in joins]
    for conn, _ in joins:
        conn.data_received(SYNC_STEP1)
    await asyncio.sleep(0)
    spent = time.process_time() - started
    answered = sum(
        c.phase is Phase.JOINED and len(t.writes) > n and not t.closed
        for (c, t), n in zip(joins, before, strict=True)
    )
    _lose(joins)
    return spent / len(requests) * 1e6, answered


def _lose(joins: list[tuple[Any, RecordingTransport]]) -> None:
    for conn, _ in joins:
        conn.connection_lost(None)


def _ours(server: RunningServer) -> tuple[WebSocketConnection, RecordingTransport]:
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


async def _add_members(server: RunningServer, project: str, users: list[str]) -> None:
    async with server.client("owner") as http:

        async def add(user: str) -> None:
            added = await http.post(
                f"/api/projects/{project}/members", json={"user_id": user, "role": "editor"}
            )
            added.raise_for_status()

        for first in range(0, len(users), 50):
            await asyncio.gather(*(add(u) for u in users[first : first + 50]))


def _requests(server: RunningServer, project: str, tokens: list[str]) -> list[bytes]:
    base = f"ws://127.0.0.1:{server.port}/ws/{project}?token="
    return [upgrade_request(base + token) for token in tokens]


async def measure(joins: int, cold_joins: int, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}

    def record(kind: str, per_join: float, answered: int, expected: int) -> None:
        if answered != expected:
            raise RuntimeError(f"{kind}: only {answered} of {expected} joins answered")
        figures.setdefault(kind, []).append(per_join)
        log(f"{kind}: {per_join:.1f} us per join")

    database = pg.fresh_name()
    await pg.create_database(database)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = make_settings(
                Path(tmp),
                database_url=pg.dsn_for(database),
                user_connections_max=max(joins, cold_joins),
                room_unload_grace_ms=COLD_GRACE_MS,
            )
            async with run_server(settings) as server:
                project = await server.create_project("owner")
                users = [f"joiner-{i}" for i in range(joins)]
                await _add_members(server, project, users)
                # A room per cold round, each with members of its own (so that no token of
                # one round was verified in another), made first and unloaded by their turn.
                cold_rooms = []
                for round_ in range(rounds):
                    cold = await server.create_project("owner")
                    cold_users = [f"cold-{round_}-{i}" for i in range(cold_joins)]
                    await _add_members(server, cold, cold_users)
                    cold_rooms.append((cold, cold_users))
                keeper = await YClient(server.ws_url(project, "owner")).connect()
                await keeper.wait_synced()  # the room stays live throughout

                for round_ in range(rounds):
                    # A different lifetime makes different tokens for the same users.
                    tokens = [mint_token(TEST_SECRET, u, ttl_s=3600 - round_) for u in users]
                    batch = _requests(server, project, tokens)
                    record("new tokens", *await _drive(lambda: _ours(server), batch), joins)
                    await asyncio.sleep(0.5)  # the closes' room work
                    record("cached tokens", *await _drive(lambda: _ours(server), batch), joins)
                    await asyncio.sleep(0.5)
                await keeper.close()
                await asyncio.sleep(2 * COLD_GRACE_MS / 1000)  # every cold room unloaded
                for round_, (cold, cold_users) in enumerate(cold_rooms):
                    # Alternating which kind opens the room first: each kind gets both.
                    own = [mint_token(TEST_SECRET, u, ttl_s=3600) for u in cold_users]
                    one = [mint_token(TEST_SECRET, cold_users[0], ttl_s=3599)] * cold_joins
                    kinds = [("cold room, own tokens", own), ("cold room, one token", one)]
                    for kind, tokens in kinds if round_ % 2 == 0 else kinds[::-1]:
                        if server.services.rooms.get(cold) is not None:
                            raise RuntimeError(f"{kind}: the room is still live")
                        batch = _requests(server, cold, tokens)
                        record(kind, *await _drive_cold(server, batch), cold_joins)
                        await asyncio.sleep(2 * COLD_GRACE_MS / 1000)  # unloaded again
    finally:
        await pg.drop_database(database)
    bare = [upgrade_request(f"ws://127.0.0.1:1/bench?token={'x' * 250}") for _ in range(joins)]
    for _ in range(rounds):
        # Its step 1 alone: the relay would send the step 2 on to every other connection.
        record("bare relay", *await _drive(_bare, bare, SYNC_STEP1), joins)
    return figures


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def report(figures: dict[str, list[float]], joins: int, cold_joins: int, rounds: int) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# CPU per join",
        "",
        f"`python -m bench.join_cost` on {when}: {joins} joins of one live room per round "
        f"(cold rooms: {cold_joins} joins each), {rounds} rounds; each join is an upgrade "
        "request and a sync step 1, handled in process with no network (CPU time, the median "
        "of the rounds).",
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
    parser.add_argument("--cold-joins", type=int, default=500, help="joins of each cold room")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if min(args.joins, args.cold_joins, args.rounds) < 1:
        parser.error("--joins, --cold-joins and --rounds must be at least 1")
    figures = asyncio.run(measure(args.joins, args.cold_joins, args.rounds))
    text = report(figures, args.joins, args.cold_joins, args.rounds)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

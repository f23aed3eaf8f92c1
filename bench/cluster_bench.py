"""Across instances: propagation latency between instances against within one, and how
delivered updates per second scale from 1 to 2 worker processes (``flowai serve --workers``).

    python -m bench.cluster_bench

Starts a private redis-server and fresh databases; every server is a ``flowai serve``
subprocess. Bounded: about two minutes. Prints a markdown table and writes
``bench/results/cluster.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.client import create_project
from bench.loadgen import RateResult, run_rate
from server.auth import mint_token
from tests.support import pg
from tests.support.process import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.server import TEST_SECRET

TOKEN = mint_token(TEST_SECRET, "bench", ttl_s=3600)
ENV = {"FLOWAI_LOG_LEVEL": "WARNING", "FLOWAI_CONN_MESSAGES_PER_S": "5000"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _room(port: int) -> str:
    return await create_project(port, TOKEN, "bench")


def _url(port: int, room: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/{room}?token={TOKEN}"


async def _fresh_db(template: str) -> str:
    name = pg.fresh_name()
    await pg.create_database(name, template=template)
    return name


async def latency(template: str, redis_url: str, work: Path, seconds: float) -> list[str]:
    db = await _fresh_db(template)
    procs = [
        ServerProcess(pg.dsn_for(db), work / f"i{i}", FLOWAI_REDIS_URL=redis_url, **ENV)
        for i in range(2)
    ]
    rows = []
    try:
        await asyncio.gather(*(p.start() for p in procs))
        for clients, rate in ((10, 10.0), (50, 2.0)):
            same = await _room(procs[0].port)
            spread = await _room(procs[0].port)
            one: RateResult = await run_rate(
                lambda _i, r=same: _url(procs[0].port, r), clients, rate, seconds, deflate=False
            )
            two: RateResult = await run_rate(
                lambda i, r=spread: _url(procs[i % 2].port, r),
                clients,
                rate,
                seconds,
                deflate=False,
            )
            for label, res in (("one instance", one), ("two instances, alternating", two)):
                rows.append(
                    f"| {clients} x {rate:g}/s | {label} | {res.p50_ms:.1f} | {res.p99_ms:.1f} "
                    f"| {100 * res.delivered_ratio:.2f} |"
                )
                log(rows[-1])
    finally:
        await asyncio.gather(*(p.stop() for p in procs))
        await pg.drop_database(db)
    return rows


async def scaling(
    template: str, redis_url: str, work: Path, seconds: float, rates: list[float]
) -> list[str]:
    rows = []
    for workers, rate in ((w, r) for r in rates for w in (1, 2)):
        db = await _fresh_db(template)
        proc = ServerProcess(
            pg.dsn_for(db),
            work / f"w{workers}",
            args=("--workers", str(workers)),
            FLOWAI_REDIS_URL=redis_url,
            **ENV,
        )
        try:
            await proc.start()
            urls = [_url(proc.port, await _room(proc.port)) for _ in range(8)]
            results = await asyncio.gather(
                *(run_rate(lambda _i, u=u: u, 5, rate, seconds, deflate=False) for u in urls)
            )
            delivered = sum(r.delivered for r in results)
            expected = sum(r.expected for r in results)
            p99 = max(r.p99_ms for r in results)
            rows.append(
                f"| {workers} | 8 rooms x 5 clients x {rate:g}/s | {delivered / seconds:,.0f} "
                f"| {100 * delivered / max(1, expected):.2f} | {p99:.1f} |"
            )
            log(rows[-1])
        finally:
            await proc.stop()
            await pg.drop_database(db)
    return rows


async def main_async(args: argparse.Namespace) -> str:
    template = await pg.create_template()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = await RedisServer(work).start()
        try:
            lat = await latency(template, redis.url, work, args.duration)
            scale = await scaling(template, redis.url, work, args.duration, args.rates)
        finally:
            await redis.stop()
            await pg.drop_database(template)
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n".join(
        [
            "# Across instances",
            "",
            f"`python -m bench.cluster_bench` on {time.strftime('%Y-%m-%d %H:%M UTC')}, "
            f"{os.cpu_count()} CPUs shared by the servers, PostgreSQL, Redis and the load "
            f"generator; {args.duration:g} s per run; load average at the end {load}.",
            "",
            "| clients x rate | where the clients are | p50 (ms) | p99 (ms) | delivered (%) |",
            "|---|---|---|---|---|",
            *lat,
            "",
            "| workers | load | delivered updates/s | delivered (%) | worst room p99 (ms) |",
            "|---|---|---|---|---|",
            *scale,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.cluster_bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[60.0, 150.0], help="edits/s per client"
    )
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(report)
    out = Path(__file__).parent / "results" / "cluster.md"
    out.write_text(report)


if __name__ == "__main__":
    main()

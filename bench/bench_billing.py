"""Credit ledger throughput on PostgreSQL: hold + capture pairs per second.

Two workloads, each on a fresh database it creates and drops:

- ``contended``: every worker charges the same user, so all pairs queue on one row lock;
- ``spread``: workers charge many users, so pairs run in parallel.

A pair is what an AI job costs the ledger: ``place_hold`` for the estimate, then ``capture`` of
the actual cost, each its own transaction. Bounded by ``--pairs`` per run and ``--seconds``
per run, whichever comes first. The ledger check runs after each workload and must pass.

    python -m bench.bench_billing --pairs 3000 --workers 1 16 64
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass

from billing.ledger import Status
from billing.service import CreditService
from persistence.db import Database
from persistence.ledger_pg import PgLedgerStore
from tests.support import pg

SPREAD_USERS = 500


@dataclass
class Run:
    workload: str
    workers: int
    pairs: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds


async def _run(
    credits: CreditService, workload: str, workers: int, pairs_max: int, seconds_max: float
) -> Run:
    users = ["contended"] if workload == "contended" else [f"u{i}" for i in range(SPREAD_USERS)]
    await asyncio.gather(
        *(credits.grant(u, 10**12, key="bench-topup", reason="benchmark") for u in users)
    )
    counter = itertools.count()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds_max

    async def worker() -> None:
        while time.perf_counter() < deadline and (n := next(counter)) < pairs_max:
            user = users[n % len(users)]
            key = f"{workload}-{workers}-{n}"
            started = time.perf_counter()
            placed = await credits.place_hold(user, 20, key=f"{key}:hold")
            assert placed.status is Status.CREATED and placed.hold is not None
            captured = await credits.capture(user, placed.hold.id, 13, key=f"{key}:capture")
            assert captured.status is Status.CREATED
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return Run(workload, workers, len(latencies), time.perf_counter() - started, latencies)


def _table(runs: list[Run]) -> str:
    lines = [
        "| workload | workers | pairs | seconds | pairs/s | transactions/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        q = statistics.quantiles(r.latencies_ms, n=100)
        lines.append(
            f"| {r.workload} | {r.workers} | {r.pairs} | {r.seconds:.1f} | {r.rate:,.0f} "
            f"| {2 * r.rate:,.0f} | {q[49]:.1f} | {q[98]:.1f} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000, help="pairs per run (at most)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per run (at most)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--pool", type=int, default=32, help="database connections")
    args = parser.parse_args()

    template = await pg.create_template()
    runs: list[Run] = []
    try:
        for workload in ("contended", "spread"):
            for workers in args.workers:
                name = pg.fresh_name()
                await pg.create_database(name, template=template)
                db = await Database.connect(
                    pg.dsn_for(name), min_size=args.pool, max_size=args.pool
                )
                try:
                    credits = CreditService(PgLedgerStore(db))
                    runs.append(await _run(credits, workload, workers, args.pairs, args.seconds))
                    report = await credits.check()
                    assert report.ok, report.violations
                finally:
                    await db.close()
                    await pg.drop_database(name)
                print(f"done: {workload} x{workers}", flush=True)
    finally:
        await pg.drop_database(template)
    print(f"\nPostgreSQL pool of {args.pool} connections; every run passed the ledger check.\n")
    print(_table(runs))


if __name__ == "__main__":
    asyncio.run(main())

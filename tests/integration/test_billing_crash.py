"""A process killed with SIGKILL in the middle of a capture leaves the whole capture or nothing.

The child process (this module run with ``python -m``) captures holds through the real store.
It reports on stdout when it has reached the point the test wants to kill it at; the parent
then sends SIGKILL and checks the ledger from a fresh connection.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from billing.ledger import HoldStatus, Kind, Status
from billing.service import CreditService
from persistence.db import Connection, Database
from persistence.ledger_pg import PgLedgerStore

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT_S = 30


class StallBeforeCommit(Database):
    """Runs each operation's statements, then says so and waits forever instead of committing."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn
            print("uncommitted", flush=True)
            await asyncio.Event().wait()


async def _child(mode: str, dsn: str, user_id: str, hold_ids: list[str]) -> None:
    cls = StallBeforeCommit if mode == "stall" else Database
    db = await cls.connect(dsn, min_size=1, max_size=1)
    credits = CreditService(PgLedgerStore(db))
    for n, hold_id in enumerate(hold_ids):
        result = await credits.capture(user_id, uuid.UUID(hold_id), 7, key=f"capture-{hold_id}")
        assert result.status is Status.CREATED
        print(f"committed {n}", flush=True)
    await asyncio.Event().wait()


async def spawn(
    mode: str, dsn: str, user_id: str, hold_ids: list[uuid.UUID]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.test_billing_crash",
        mode,
        dsn,
        user_id,
        *map(str, hold_ids),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), READ_TIMEOUT_S)
    assert line, f"child exited early with {await proc.wait()}"
    return line.decode().strip()


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL


async def setup_holds(credits: CreditService, user_id: str, count: int) -> list[uuid.UUID]:
    await credits.grant(user_id, 10 * count, key="topup", reason="topup")
    holds = []
    for i in range(count):
        placed = await credits.place_hold(user_id, 10, key=f"hold-{i}")
        assert placed.hold is not None
        holds.append(placed.hold.id)
    return holds


async def assert_consistent(credits: CreditService) -> None:
    report = await credits.check()
    assert report.ok, report.violations


async def test_killed_before_commit_leaves_nothing(db: Database, database_url: str) -> None:
    credits = CreditService(PgLedgerStore(db))
    [hold_id] = await setup_holds(credits, "alice", 1)
    proc = await spawn("stall", database_url, "alice", [hold_id])
    # The child has run every statement of the capture; only the commit is missing.
    assert await read_line(proc) == "uncommitted"
    await kill(proc)

    hold = await credits.store.hold("alice", hold_id)
    assert hold is not None and hold.status is HoldStatus.PENDING
    account = await credits.balance("alice")
    assert (account.balance, account.held) == (10, 10)
    assert [t.kind for t in await credits.transactions("alice")] == [Kind.HOLD, Kind.GRANT]
    await assert_consistent(credits)
    # The lock died with the connection: the capture can be retried, once.
    retried = await credits.capture("alice", hold_id, 7, key=f"capture-{hold_id}")
    assert retried.status is Status.CREATED
    assert (retried.account.balance, retried.account.held) == (3, 0)
    await assert_consistent(credits)


async def test_killed_after_commit_keeps_the_whole_capture(db: Database, database_url: str) -> None:
    credits = CreditService(PgLedgerStore(db))
    [hold_id] = await setup_holds(credits, "bob", 1)
    proc = await spawn("run", database_url, "bob", [hold_id])
    assert await read_line(proc) == "committed 0"
    await kill(proc)

    hold = await credits.store.hold("bob", hold_id)
    assert hold is not None and (hold.status, hold.captured) == (HoldStatus.CAPTURED, 7)
    account = await credits.balance("bob")
    assert (account.balance, account.held) == (3, 0)
    retried = await credits.capture("bob", hold_id, 7, key=f"capture-{hold_id}")
    assert retried.status is Status.ALREADY_EXISTS
    await assert_consistent(credits)


async def test_killed_while_capturing_leaves_each_capture_whole_or_absent(
    db: Database, database_url: str
) -> None:
    credits = CreditService(PgLedgerStore(db))
    holds = await setup_holds(credits, "carol", 100)
    proc = await spawn("run", database_url, "carol", holds)
    # Let a few captures commit, then kill the child wherever it happens to be.
    for n in range(5):
        assert await read_line(proc) == f"committed {n}"
    await kill(proc)

    captured = 0
    for hold_id in holds:
        hold = await credits.store.hold("carol", hold_id)
        assert hold is not None and hold.status in (HoldStatus.PENDING, HoldStatus.CAPTURED)
        captured += hold.status is HoldStatus.CAPTURED
    assert captured >= 5
    account = await credits.balance("carol")
    assert (account.balance, account.held) == (1000 - 7 * captured, 10 * (100 - captured))
    await assert_consistent(credits)


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))

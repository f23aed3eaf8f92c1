"""The ledger on a real PostgreSQL: concurrency from many connections, the sweeper, row-level
security, and the schema's own constraints as the last line of defence."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from billing.ledger import HoldStatus, Kind, Status
from billing.service import CreditService
from persistence.db import Database
from persistence.ledger_pg import PgLedgerStore, ledger_queries

CONNECTIONS = 32


@pytest.fixture
async def wide_db(database_url: str) -> AsyncIterator[Database]:
    """A pool that really opens many connections, so requests race in the database."""
    database = await Database.connect(database_url, min_size=CONNECTIONS, max_size=CONNECTIONS)
    yield database
    await database.close()


@pytest.fixture
def credits(wide_db: Database) -> CreditService:
    return CreditService(PgLedgerStore(wide_db))


async def assert_consistent(credits: CreditService) -> None:
    report = await credits.check()
    assert report.ok, report.violations


async def test_200_concurrent_holds_of_7_against_1000(
    credits: CreditService, wide_db: Database
) -> None:
    await credits.grant("alice", 1000, key="g", reason="topup")
    assert wide_db.pool.get_size() == CONNECTIONS
    results = await asyncio.gather(
        *(credits.place_hold("alice", 7, key=f"job-{i}:hold") for i in range(200))
    )
    outcomes = Counter(r.status for r in results)
    assert outcomes == {Status.CREATED: 142, Status.INSUFFICIENT_CREDITS: 58}
    assert all(r.account.available >= 0 for r in results)
    account = await credits.balance("alice")
    assert (account.balance, account.held, account.available) == (1000, 994, 6)
    assert len({r.hold.id for r in results if r.hold}) == 142
    await assert_consistent(credits)


async def test_one_key_retried_concurrently_charges_once(credits: CreditService) -> None:
    # Concurrent grants with one key for a user who has no account yet.
    grants = await asyncio.gather(
        *(credits.grant("bob", 100, key="purchase:pi_42", reason="pi_42") for _ in range(40))
    )
    assert Counter(r.status for r in grants) == {Status.CREATED: 1, Status.ALREADY_EXISTS: 39}
    assert len({r.transaction.id for r in grants if r.transaction}) == 1
    assert (await credits.balance("bob")).balance == 100

    holds = await asyncio.gather(
        *(credits.place_hold("bob", 30, key="job-7:hold", job_id="job-7") for _ in range(40))
    )
    assert Counter(r.status for r in holds) == {Status.CREATED: 1, Status.ALREADY_EXISTS: 39}
    assert len({r.hold.id for r in holds if r.hold}) == 1
    hold_id = holds[0].hold.id if holds[0].hold else uuid.uuid4()

    captures = await asyncio.gather(
        *(credits.capture("bob", hold_id, 25, key="job-7:capture") for _ in range(40))
    )
    assert Counter(r.status for r in captures) == {Status.CREATED: 1, Status.ALREADY_EXISTS: 39}
    account = await credits.balance("bob")
    assert (account.balance, account.held) == (75, 0)
    assert len(await credits.transactions("bob")) == 3
    await assert_consistent(credits)


async def test_capture_and_release_racing_resolve_each_hold_once(credits: CreditService) -> None:
    await credits.grant("carol", 10_000, key="g", reason="topup")
    placed = await asyncio.gather(
        *(credits.place_hold("carol", 50, key=f"h{i}") for i in range(60))
    )
    hold_ids = [r.hold.id for r in placed if r.hold]
    assert len(hold_ids) == 60

    async def race(hold_id: uuid.UUID) -> tuple[Status, ...]:
        results = await asyncio.gather(
            credits.capture("carol", hold_id, 40, key=f"{hold_id}:capture"),
            credits.release("carol", hold_id, key=f"{hold_id}:release"),
            credits.capture("carol", hold_id, 45, key=f"{hold_id}:capture-again"),
        )
        return tuple(r.status for r in results)

    outcomes = await asyncio.gather(*(race(h) for h in hold_ids))
    charged = 0
    for capture, release, capture_again in outcomes:
        statuses = [capture, release, capture_again]
        assert statuses.count(Status.CREATED) == 1, statuses
        winner = statuses.index(Status.CREATED)
        final = {0: Status.ALREADY_CAPTURED, 1: Status.ALREADY_RELEASED, 2: Status.ALREADY_CAPTURED}
        assert all(s is final[winner] for i, s in enumerate(statuses) if i != winner), statuses
        charged += {0: 40, 1: 0, 2: 45}[winner]
    account = await credits.balance("carol")
    assert (account.balance, account.held) == (10_000 - charged, 0)
    await assert_consistent(credits)


async def test_operations_across_many_users_interleave(credits: CreditService) -> None:
    users = [f"user-{i}" for i in range(20)]
    await asyncio.gather(*(credits.grant(u, 100, key="g", reason="topup") for u in users))

    async def job(user: str, n: int) -> None:
        placed = await credits.place_hold(user, 10, key=f"j{n}:hold")
        if placed.hold is None:
            return
        if n % 3:
            await credits.capture(user, placed.hold.id, n % 13, key=f"j{n}:capture")
        else:
            await credits.release(user, placed.hold.id, key=f"j{n}:release")

    await asyncio.gather(*(job(u, n) for u in users for n in range(15)))
    await assert_consistent(credits)


async def test_concurrent_sweepers_expire_each_due_hold_once(
    credits: CreditService, wide_db: Database
) -> None:
    await credits.grant("dave", 1000, key="g", reason="topup")
    placed = await asyncio.gather(
        *(credits.place_hold("dave", 10, key=f"h{i}", ttl_s=600) for i in range(50))
    )
    # Half the holds' deadlines pass on the database clock; the rest stay in the future.
    due = [r.hold.id for r in placed[:25] if r.hold]
    await wide_db.pool.execute(
        "UPDATE credit_holds SET expires_at = clock_timestamp() - interval '1 millisecond',"
        " created_at = clock_timestamp() - interval '1 hour' WHERE id = ANY($1::uuid[])",
        due,
    )
    # A capture races the sweepers on one of the due holds: it must find it expired.
    counts, late = await asyncio.gather(
        asyncio.gather(*(credits.expire_due(limit=10) for _ in range(6))),
        credits.capture("dave", due[0], 10, key="late"),
    )
    assert late.status is Status.ALREADY_EXPIRED
    swept = sum(counts)
    while more := await credits.expire_due(limit=10):
        swept += more
    # Each due hold expired once: by a sweeper, or by the capture that touched it first.
    by_capture = late.transaction is not None
    assert swept + by_capture == 25
    expiries = await wide_db.pool.fetchval(
        "SELECT count(*) FROM credit_transactions WHERE kind = 'expiry'"
    )
    assert expiries == 25
    account = await credits.balance("dave")
    assert (account.balance, account.held) == (1000, 250)
    pending = await wide_db.pool.fetchval(
        "SELECT count(*) FROM credit_holds WHERE status = 'pending'"
    )
    assert pending == 25
    await assert_consistent(credits)


async def test_users_read_only_their_own_credits(db: Database) -> None:
    credits = CreditService(PgLedgerStore(db))
    await credits.grant("user-a", 100, key="g", reason="topup")
    placed = await credits.place_hold("user-a", 10, key="h")
    assert placed.hold is not None
    await credits.grant("user-b", 5, key="g", reason="topup")

    for table in ("user_credits", "credit_transactions", "credit_holds"):
        async with db.as_user("user-b") as conn:
            seen = {r["user_id"] for r in await conn.fetch(f"SELECT user_id FROM {table}")}
        assert "user-a" not in seen, table
        async with db.as_user("user-a") as conn:
            seen = {r["user_id"] for r in await conn.fetch(f"SELECT user_id FROM {table}")}
        assert seen == {"user-a"}, table
    async with db.as_user("nobody") as conn:
        assert await conn.fetch("SELECT * FROM user_credits") == []
    # The store's user-facing reads run under the caller's identity too.
    store = PgLedgerStore(db)
    assert await store.hold("user-b", placed.hold.id) is None
    assert await store.transactions("user-b") != []
    # The application role cannot write at all.
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE flowai_app_user")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE user_credits SET balance = 1000000")


async def test_the_schema_refuses_corruption(db: Database) -> None:
    credits = CreditService(PgLedgerStore(db))
    await credits.grant("eve", 100, key="g", reason="topup")
    placed = await credits.place_hold("eve", 40, key="h")
    assert placed.hold is not None
    hold_id = placed.hold.id
    await credits.capture("eve", hold_id, 30, key="c")

    async def refused(sql: str, *args: object) -> None:
        with pytest.raises(asyncpg.PostgresError):
            async with db.transaction() as conn:
                await conn.execute(sql, *args)

    await refused("UPDATE user_credits SET held = balance + 1 WHERE user_id = 'eve'")
    await refused("UPDATE user_credits SET balance = -1, held = 0 WHERE user_id = 'eve'")
    await refused("UPDATE credit_transactions SET amount = 1")
    await refused("DELETE FROM credit_transactions")
    await refused("DELETE FROM credit_holds")
    await refused("UPDATE credit_holds SET status = 'pending', resolved_at = NULL")
    await refused("UPDATE credit_holds SET captured = 1")
    insert = """INSERT INTO credit_transactions (user_id, kind, amount, balance_delta,
                    held_delta, balance_after, held_after, hold_id, idempotency_key,
                    request_digest, reason)
                VALUES ('eve', $1, $2, $3, $4, 0, 0, $5, $6, 'x', $7)"""
    # A second resolution of the captured hold.
    await refused(insert, "release", 40, 0, -40, hold_id, "again", "")
    # A hold movement without its hold, a grant without its reason.
    await refused(insert, "capture", 1, -1, -1, None, "k1", "")
    await refused(insert, "grant", 1, 1, 0, None, "k2", "")
    # A grant whose deltas do not match its amount.
    await refused(insert, "grant", 1, 2, 0, None, "k3", "r")
    # A key used twice by one user.
    await refused(insert, "grant", 1, 1, 0, None, "g", "r")
    await assert_consistent(credits)


async def test_double_entry_accounts_sum_to_zero(db: Database) -> None:
    credits = CreditService(PgLedgerStore(db))
    await credits.grant("fay", 100, key="g", reason="welcome")
    await credits.grant("fay", 500, key="p", reason="pi_9", purchase=True)
    placed = await credits.place_hold("fay", 50, key="h")
    assert placed.hold is not None
    await credits.capture("fay", placed.hold.id, 45, key="c")
    await credits.refund("fay", placed.hold.id, 5, key="r", reason="partial failure")
    rows = {
        r["account"]: r["balance"] for r in await db.pool.fetch("SELECT * FROM credit_accounts")
    }
    assert rows == {
        "user:fay": 560,
        "system:grants": -100,
        "system:sales": -500,
        "system:usage": 40,
    }
    assert sum(rows.values()) == 0


async def test_every_ledger_query_prepares_against_the_schema(db: Database) -> None:
    queries = ledger_queries()
    assert {"lock_account", "open_account", "load_context", "apply", "due_holds"} <= set(queries)
    async with db.pool.acquire() as conn:
        for name, sql in queries.items():
            statement = await conn.prepare(sql)
            assert statement is not None, name


async def test_hold_rows_match_the_ledger(db: Database) -> None:
    credits = CreditService(PgLedgerStore(db))
    await credits.grant("gil", 100, key="g", reason="topup")
    placed = await credits.place_hold("gil", 60, key="h", job_id="render-1")
    assert placed.hold is not None
    await credits.release("gil", placed.hold.id, key="r")
    row = await db.pool.fetchrow("SELECT * FROM credit_holds WHERE id = $1", placed.hold.id)
    assert row is not None
    assert (row["status"], row["job_id"]) == (HoldStatus.RELEASED.value, "render-1")
    assert row["resolved_at"] is not None
    txs = await credits.transactions("gil")
    assert [t.kind for t in txs] == [Kind.RELEASE, Kind.HOLD, Kind.GRANT]
    assert txs[0].job_id == "render-1"

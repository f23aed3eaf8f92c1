"""One contract for every ``LedgerStore``: the in-memory twin and PostgreSQL pass the same tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from billing.ledger import HoldStatus, Kind, Status
from billing.memory import MemoryLedgerStore
from billing.ports import LedgerStore
from billing.requests import Expire
from billing.service import CreditService
from persistence.db import Database
from persistence.ledger_pg import PgLedgerStore
from tests.support import pg


@dataclass
class Ledger:
    store: LedgerStore
    credits: CreditService
    # Moves the store's clock forward by this many seconds, as far as hold deadlines go.
    advance: Callable[[int], Awaitable[None]]


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _shift_pending_holds(db: Database, seconds: int) -> None:
    # The database clock cannot be moved, so pending holds move back in time instead.
    await db.pool.execute(
        """UPDATE credit_holds SET created_at = created_at - make_interval(secs => $1),
                                   expires_at = expires_at - make_interval(secs => $1)
           WHERE status = 'pending'""",
        seconds,
    )


@pytest.fixture(params=["memory", "postgres"])
async def ledger(request: pytest.FixtureRequest, pg_template: str) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        clock = FakeClock()
        memory = MemoryLedgerStore(clock)

        async def advance(seconds: int) -> None:
            clock.now += timedelta(seconds=seconds)

        yield Ledger(memory, CreditService(memory), advance)
        return
    name = pg.fresh_name()
    await pg.create_database(name, template=pg_template)
    db = await Database.connect(pg.dsn_for(name))
    try:
        store = PgLedgerStore(db)

        async def shift(seconds: int) -> None:
            await _shift_pending_holds(db, seconds)

        yield Ledger(store, CreditService(store), shift)
    finally:
        await db.close()
        await pg.drop_database(name)


async def assert_consistent(ledger: Ledger) -> None:
    report = await ledger.credits.check()
    assert report.ok, report.violations


async def test_unknown_user_has_an_empty_ledger(ledger: Ledger) -> None:
    account = await ledger.credits.balance("nobody")
    assert (account.balance, account.held, account.available) == (0, 0, 0)
    assert await ledger.credits.transactions("nobody") == []
    assert await ledger.store.hold("nobody", uuid.uuid4()) is None
    assert (await ledger.credits.check()).users == 0


async def test_grant_is_idempotent_by_key(ledger: Ledger) -> None:
    first = await ledger.credits.grant("alice", 500, key="signup", reason="welcome bonus")
    assert first.status is Status.CREATED
    assert first.account.balance == 500
    assert first.transaction is not None and first.transaction.kind is Kind.GRANT

    again = await ledger.credits.grant("alice", 500, key="signup", reason="welcome bonus")
    assert again.status is Status.ALREADY_EXISTS
    assert again.transaction == first.transaction
    other = await ledger.credits.grant("alice", 600, key="signup", reason="welcome bonus")
    assert other.status is Status.EXISTS_WITH_DIFFERENT_REQUEST
    assert other.transaction is None

    # The same key belongs to each user separately.
    assert (await ledger.credits.grant("bob", 1, key="signup", reason="x")).ok
    bought = await ledger.credits.grant("alice", 100, key="pi_1", reason="stripe", purchase=True)
    assert bought.transaction is not None and bought.transaction.kind is Kind.PURCHASE
    assert (await ledger.credits.balance("alice")).balance == 600
    await assert_consistent(ledger)


async def test_hold_refused_when_available_is_short_and_key_stays_free(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 10, key="g", reason="r")
    refused = await ledger.credits.place_hold("alice", 11, key="job-1:hold")
    assert refused.status is Status.INSUFFICIENT_CREDITS
    assert refused.status.transient()
    assert refused.required == 11 and refused.account.available == 10
    assert refused.hold is None
    assert len(await ledger.credits.transactions("alice")) == 1

    await ledger.credits.grant("alice", 1, key="g2", reason="r")
    placed = await ledger.credits.place_hold("alice", 11, key="job-1:hold", job_id="job-1")
    assert placed.status is Status.CREATED
    assert placed.hold is not None and placed.hold.job_id == "job-1"
    assert (placed.account.balance, placed.account.held) == (11, 11)
    await assert_consistent(ledger)


async def test_hold_replay_returns_the_same_hold(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 30, key="h")
    replay = await ledger.credits.place_hold("alice", 30, key="h")
    assert replay.status is Status.ALREADY_EXISTS
    assert replay.hold == placed.hold
    assert replay.transaction == placed.transaction
    assert replay.account.held == 30
    different = await ledger.credits.place_hold("alice", 31, key="h")
    assert different.status is Status.EXISTS_WITH_DIFFERENT_REQUEST


async def test_capture_below_the_hold_returns_the_rest(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    captured = await ledger.credits.capture("alice", placed.hold.id, 25, key="c")
    assert captured.status is Status.CREATED
    assert (captured.account.balance, captured.account.held) == (75, 0)
    assert captured.hold is not None
    assert (captured.hold.status, captured.hold.captured) == (HoldStatus.CAPTURED, 25)
    assert captured.transaction is not None
    assert (captured.transaction.balance_delta, captured.transaction.held_delta) == (-25, -40)
    stored = await ledger.store.hold("alice", placed.hold.id)
    assert stored == captured.hold
    await assert_consistent(ledger)


async def test_capture_above_the_hold_needs_available_credits(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 50, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    hold_id = placed.hold.id

    # 40 held + 10 available: a cost of 55 is 15 over the hold, only 10 available.
    short = await ledger.credits.capture("alice", hold_id, 55, key="c")
    assert short.status is Status.INSUFFICIENT_CREDITS
    assert short.required == 15
    hold = await ledger.store.hold("alice", hold_id)
    assert hold is not None and hold.status is HoldStatus.PENDING

    exact = await ledger.credits.capture("alice", hold_id, 50, key="c")
    assert exact.status is Status.CREATED
    assert (exact.account.balance, exact.account.held) == (0, 0)
    await assert_consistent(ledger)


async def test_capture_can_cap_at_the_hold(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 40, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    capped = await ledger.credits.capture("alice", placed.hold.id, 90, key="c", cap_at_hold=True)
    assert capped.status is Status.CREATED
    assert capped.transaction is not None and capped.transaction.amount == 40
    assert capped.account.balance == 0
    await assert_consistent(ledger)


async def test_capture_of_zero_voids_the_hold(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 40, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    captured = await ledger.credits.capture("alice", placed.hold.id, 0, key="c")
    assert captured.status is Status.CREATED
    assert (captured.account.balance, captured.account.held) == (40, 0)
    await assert_consistent(ledger)


async def test_a_hold_resolves_once(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    hold_id = placed.hold.id
    released = await ledger.credits.release("alice", hold_id, key="r")
    assert released.status is Status.CREATED
    assert released.account.held == 0 and released.account.balance == 100

    assert (await ledger.credits.release("alice", hold_id, key="r")).status is (
        Status.ALREADY_EXISTS
    )
    assert (await ledger.credits.release("alice", hold_id, key="r2")).status is (
        Status.ALREADY_RELEASED
    )
    late = await ledger.credits.capture("alice", hold_id, 10, key="c")
    assert late.status is Status.ALREADY_RELEASED
    assert not late.status.transient()
    assert (await ledger.credits.balance("alice")).balance == 100

    placed2 = await ledger.credits.place_hold("alice", 10, key="h2")
    assert placed2.hold is not None
    assert (await ledger.credits.capture("alice", placed2.hold.id, 10, key="c2")).ok
    assert (await ledger.credits.capture("alice", placed2.hold.id, 10, key="c3")).status is (
        Status.ALREADY_CAPTURED
    )
    assert (await ledger.credits.release("alice", placed2.hold.id, key="r3")).status is (
        Status.ALREADY_CAPTURED
    )
    await assert_consistent(ledger)


async def test_holds_are_private_to_their_user(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    await ledger.credits.grant("mallory", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    stolen = await ledger.credits.capture("mallory", placed.hold.id, 40, key="c")
    assert stolen.status is Status.HOLD_NOT_FOUND
    assert (await ledger.credits.release("mallory", placed.hold.id, key="r")).status is (
        Status.HOLD_NOT_FOUND
    )
    assert (await ledger.credits.capture("alice", uuid.uuid4(), 1, key="c")).status is (
        Status.HOLD_NOT_FOUND
    )
    assert await ledger.store.hold("mallory", placed.hold.id) is None
    await assert_consistent(ledger)


async def test_refunds_stay_within_the_captured_charge(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 40, key="h")
    assert placed.hold is not None
    hold_id = placed.hold.id
    early = await ledger.credits.refund("alice", hold_id, 5, key="rf")
    assert early.status is Status.NOT_CAPTURED
    await ledger.credits.capture("alice", hold_id, 30, key="c")

    first = await ledger.credits.refund("alice", hold_id, 20, key="rf", reason="poor result")
    assert first.status is Status.CREATED
    assert first.account.balance == 90
    assert (await ledger.credits.refund("alice", hold_id, 11, key="rf2")).status is (
        Status.EXCEEDS_CAPTURED
    )
    rest = await ledger.credits.refund("alice", hold_id, 10, key="rf2")
    assert rest.status is Status.CREATED and rest.account.balance == 100
    assert rest.hold is not None and rest.hold.refunded == 30

    placed2 = await ledger.credits.place_hold("alice", 10, key="h2")
    assert placed2.hold is not None
    await ledger.credits.release("alice", placed2.hold.id, key="r2")
    assert (await ledger.credits.refund("alice", placed2.hold.id, 1, key="rf3")).status is (
        Status.ALREADY_RELEASED
    )
    await assert_consistent(ledger)


async def test_sweeper_expires_due_holds_once(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    short = await ledger.credits.place_hold("alice", 30, key="h1", ttl_s=60)
    long = await ledger.credits.place_hold("alice", 20, key="h2", ttl_s=3600)
    assert short.hold is not None and long.hold is not None
    assert await ledger.credits.expire_due() == 0
    not_yet = await ledger.store.execute(Expire("alice", short.hold.id))
    assert not_yet.status is Status.NOT_EXPIRED

    await ledger.advance(61)
    assert [ref.hold_id for ref in await ledger.store.due_holds(10)] == [short.hold.id]
    assert await ledger.credits.expire_due() == 1
    assert await ledger.credits.expire_due() == 0
    account = await ledger.credits.balance("alice")
    assert (account.balance, account.held) == (100, 20)
    expired = await ledger.store.hold("alice", short.hold.id)
    assert expired is not None and expired.status is HoldStatus.EXPIRED
    late = await ledger.credits.capture("alice", short.hold.id, 30, key="c")
    assert late.status is Status.ALREADY_EXPIRED
    await assert_consistent(ledger)


async def test_a_due_hold_expires_when_touched_before_the_sweeper(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 30, key="h", ttl_s=60)
    assert placed.hold is not None
    await ledger.advance(60)
    late = await ledger.credits.capture("alice", placed.hold.id, 30, key="c")
    assert late.status is Status.ALREADY_EXPIRED
    assert late.transaction is not None and late.transaction.kind is Kind.EXPIRY
    assert late.account.held == 0 and late.account.balance == 100
    assert await ledger.credits.expire_due() == 0
    # The capture's key was not consumed by the refusal.
    kinds = [t.kind for t in await ledger.credits.transactions("alice")]
    assert kinds == [Kind.EXPIRY, Kind.HOLD, Kind.GRANT]
    await assert_consistent(ledger)


async def test_adjustments_never_make_available_negative(ledger: Ledger) -> None:
    created = await ledger.credits.adjust("carol", 25, key="a1", reason="support credit")
    assert created.status is Status.CREATED and created.account.balance == 25
    await ledger.credits.place_hold("carol", 20, key="h")
    refused = await ledger.credits.adjust("carol", -6, key="a2", reason="correction")
    assert refused.status is Status.INSUFFICIENT_CREDITS and refused.required == 6
    taken = await ledger.credits.adjust("carol", -5, key="a2", reason="correction")
    assert taken.status is Status.CREATED
    assert (taken.account.balance, taken.account.available) == (20, 0)
    # Taking from an account that does not exist writes nothing.
    ghost = await ledger.credits.adjust("ghost", -1, key="a", reason="x")
    assert ghost.status is Status.INSUFFICIENT_CREDITS
    assert (await ledger.credits.check()).users == 1
    await assert_consistent(ledger)


async def test_transactions_page_newest_first(ledger: Ledger) -> None:
    for i in range(7):
        await ledger.credits.grant("alice", i + 1, key=f"g{i}", reason="r")
    await ledger.credits.grant("bob", 1, key="g", reason="r")
    first = await ledger.credits.transactions("alice", limit=3)
    assert [t.amount for t in first] == [7, 6, 5]
    second = await ledger.credits.transactions("alice", before_id=first[-1].id, limit=3)
    assert [t.amount for t in second] == [4, 3, 2]
    last = await ledger.credits.transactions("alice", before_id=second[-1].id, limit=3)
    assert [t.amount for t in last] == [1]
    assert all(t.user_id == "alice" for t in first + second + last)
    assert [t.balance_after for t in first] == [28, 21, 15]


async def test_check_counts_what_it_scanned(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 10, key="h")
    assert placed.hold is not None
    await ledger.credits.capture("alice", placed.hold.id, 10, key="c")
    await ledger.credits.grant("bob", 5, key="g", reason="r")
    report = await ledger.credits.check()
    assert (report.users, report.holds, report.transactions) == (2, 1, 4)
    assert report.ok


async def test_the_sweeper_runs_until_cancelled(ledger: Ledger) -> None:
    await ledger.credits.grant("alice", 100, key="g", reason="r")
    placed = await ledger.credits.place_hold("alice", 30, key="h", ttl_s=60)
    assert placed.hold is not None
    await ledger.advance(60)
    sweeper = asyncio.create_task(ledger.credits.sweep_forever(interval_s=0))
    try:
        for _ in range(10_000):
            hold = await ledger.store.hold("alice", placed.hold.id)
            if hold is not None and hold.status is HoldStatus.EXPIRED:
                break
            await asyncio.sleep(0)
        else:
            pytest.fail("the sweeper never expired the hold")
    finally:
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper
    assert (await ledger.credits.balance("alice")).held == 0

"""The ledger's pure rules (``Status``, ``decide``), the memory store's clock and the sweeper."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from billing.ledger import Account, Decision, Hold, HoldRef, HoldStatus, Kind, State, Status, decide
from billing.memory import MemoryLedgerStore
from billing.requests import (
    Adjust,
    Capture,
    Credit,
    Expire,
    PlaceHold,
    Refund,
    Release,
)
from billing.service import CreditService

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLD_ID = uuid.UUID(int=7)


def pending(amount: int = 40, *, ttl_s: int = 600, user_id: str = "u") -> Hold:
    return Hold(
        id=HOLD_ID,
        user_id=user_id,
        amount=amount,
        status=HoldStatus.PENDING,
        created_at=NOW,
        expires_at=NOW + timedelta(seconds=ttl_s),
    )


def run(
    request: object, account: Account, hold: Hold | None = None, *, at: datetime = NOW
) -> Decision:
    assert isinstance(request, Credit | Adjust | PlaceHold | Capture | Release | Refund | Expire)
    return decide(request, State(account, None, hold), now=at, new_hold_id=HOLD_ID)


# -- Status -----------------------------------------------------------------------------------


def test_only_recorded_outcomes_are_ok() -> None:
    assert {s for s in Status if s.ok} == {Status.CREATED, Status.ALREADY_EXISTS}


def test_transient_outcomes_are_those_a_retry_can_change() -> None:
    assert {s for s in Status if s.transient()} == {
        Status.INSUFFICIENT_CREDITS,
        Status.NOT_CAPTURED,
        Status.NOT_EXPIRED,
    }


# -- decide -----------------------------------------------------------------------------------


def test_hold_needs_available_credits() -> None:
    account = Account("u", balance=100, held=70)
    refused = run(PlaceHold(user_id="u", key="k", amount=31), account)
    assert refused.status is Status.INSUFFICIENT_CREDITS and refused.entry is None
    placed = run(PlaceHold(user_id="u", key="k", amount=30, ttl_s=90), account)
    assert placed.status is Status.CREATED
    assert placed.account == Account("u", 100, 100)
    assert placed.hold is not None and placed.hold_changed
    assert placed.hold.expires_at == NOW + timedelta(seconds=90)
    assert placed.entry is not None
    assert (placed.entry.balance_after, placed.entry.held_after) == (100, 100)


@pytest.mark.parametrize(
    ("balance", "cost", "cap", "status", "charged"),
    [
        (100, 10, False, Status.CREATED, 10),  # below the hold
        (100, 40, False, Status.CREATED, 40),  # exactly the hold
        (100, 100, False, Status.CREATED, 100),  # 60 over, 60 available
        (100, 101, False, Status.INSUFFICIENT_CREDITS, None),  # 61 over, 60 available
        (100, 101, True, Status.CREATED, 40),  # capped at the hold
        (40, 41, False, Status.INSUFFICIENT_CREDITS, None),
    ],
)
def test_capture_rule(
    balance: int, cost: int, cap: bool, status: Status, charged: int | None
) -> None:
    account = Account("u", balance=balance, held=40)
    request = Capture(user_id="u", key="c", hold_id=HOLD_ID, amount=cost, cap_at_hold=cap)
    decision = run(request, account, pending(40))
    assert decision.status is status
    if charged is None:
        assert decision.entry is None and decision.account == account
    else:
        assert decision.entry is not None and decision.entry.amount == charged
        assert decision.account == Account("u", balance - charged, 0)
        assert decision.hold is not None and decision.hold.captured == charged


def test_touching_a_due_hold_expires_it() -> None:
    account = Account("u", balance=100, held=40)
    hold = pending(40, ttl_s=60)
    for request in (
        Capture(user_id="u", key="c", hold_id=HOLD_ID, amount=10),
        Release(user_id="u", key="r", hold_id=HOLD_ID),
    ):
        decision = run(request, account, hold, at=NOW + timedelta(seconds=60))
        assert decision.status is Status.ALREADY_EXPIRED
        assert decision.entry is not None and decision.entry.kind is Kind.EXPIRY
        assert decision.entry.key == Expire("u", HOLD_ID).key
        assert decision.account == Account("u", 100, 0)
    early = run(Expire("u", HOLD_ID), account, hold, at=NOW + timedelta(seconds=59))
    assert early.status is Status.NOT_EXPIRED


def test_a_replay_is_judged_before_anything_else() -> None:
    account = Account("u", balance=100)
    first = run(Credit(user_id="u", key="k", amount=5, reason="r"), account)
    assert first.entry is not None
    recorded = first.entry.recorded(id=1, created_at=NOW)
    state = State(first.account, recorded, None)
    again = decide(
        Credit(user_id="u", key="k", amount=5, reason="r"), state, now=NOW, new_hold_id=HOLD_ID
    )
    assert again.status is Status.ALREADY_EXISTS and again.replay == recorded
    assert again.entry is None
    other = decide(PlaceHold(user_id="u", key="k", amount=5), state, now=NOW, new_hold_id=HOLD_ID)
    assert other.status is Status.EXISTS_WITH_DIFFERENT_REQUEST and other.replay is None


def test_resolved_holds_refuse_every_resolution() -> None:
    account = Account("u", balance=100)
    for status, outcome in [
        (HoldStatus.CAPTURED, Status.ALREADY_CAPTURED),
        (HoldStatus.RELEASED, Status.ALREADY_RELEASED),
        (HoldStatus.EXPIRED, Status.ALREADY_EXPIRED),
    ]:
        hold = replace(pending(), status=status, resolved_at=NOW)
        for request in (
            Capture(user_id="u", key="c", hold_id=HOLD_ID, amount=1),
            Release(user_id="u", key="r", hold_id=HOLD_ID),
            Expire("u", HOLD_ID),
        ):
            assert run(request, account, hold).status is outcome


def test_entries_name_their_contra_account() -> None:
    decision = run(Credit(user_id="u", key="k", amount=5, reason="r", purchase=True), Account("u"))
    assert decision.entry is not None
    assert decision.entry.contra_account == "system:sales"
    expire = run(Expire("u", HOLD_ID), Account("u"))
    assert expire.status is Status.HOLD_NOT_FOUND


async def test_the_memory_store_uses_the_wall_clock_by_default() -> None:
    store = MemoryLedgerStore()
    await store.execute(Credit(user_id="u", key="g", amount=5, reason="r"))
    result = await store.execute(PlaceHold(user_id="u", key="h", amount=5, ttl_s=60))
    assert result.hold is not None
    assert result.hold.created_at.tzinfo is UTC
    assert result.hold.created_at <= datetime.now(UTC) < result.hold.expires_at


async def test_the_sweeper_survives_a_failing_sweep(caplog: pytest.LogCaptureFixture) -> None:
    class FlakyStore(MemoryLedgerStore):
        failures = 1

        async def due_holds(self, limit: int) -> list[HoldRef]:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database unreachable")
            return await super().due_holds(limit)

    clock = [NOW]
    store = FlakyStore(lambda: clock[0])
    credits = CreditService(store)
    await credits.grant("u", 10, key="g", reason="r")
    placed = await credits.place_hold("u", 10, key="h", ttl_s=1)
    assert placed.hold is not None
    clock[0] += timedelta(seconds=1)
    sweeper = asyncio.create_task(credits.sweep_forever(interval_s=0))
    try:
        for _ in range(10_000):
            if (await credits.balance("u")).held == 0:
                break
            await asyncio.sleep(0)
    finally:
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper
    assert (await credits.balance("u")).held == 0
    assert "hold sweep failed" in caplog.text

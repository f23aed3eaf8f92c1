"""The ledger's pure rules: requests, ``decide``, results and the invariant checker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from billing import errors
from billing.audit import UserLedger, audit
from billing.ledger import Account, Decision, Hold, HoldRef, HoldStatus, Kind, State, Status, decide
from billing.memory import MemoryLedgerStore
from billing.requests import (
    AMOUNT_MAX,
    HOLD_TTL_S_MAX,
    Adjust,
    Capture,
    Credit,
    Expire,
    PlaceHold,
    Refund,
    Release,
    request_digest,
)
from billing.results import Result
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


# -- Requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Credit(user_id="", key="k", amount=1, reason="r"),
        lambda: Credit(user_id="u", key="", amount=1, reason="r"),
        lambda: Credit(user_id="u", key="k" * 201, amount=1, reason="r"),
        lambda: Credit(user_id="u", key="system:expiry:x", amount=1, reason="r"),
        lambda: Credit(user_id="u", key="k", amount=0, reason="r"),
        lambda: Credit(user_id="u", key="k", amount=-5, reason="r"),
        lambda: Credit(user_id="u", key="k", amount=AMOUNT_MAX + 1, reason="r"),
        lambda: Credit(user_id="u", key="k", amount=True, reason="r"),
        lambda: Credit(user_id="u", key="k", amount=1.0, reason="r"),  # type: ignore[arg-type]
        lambda: Credit(user_id="u", key="k", amount=1, reason=""),
        lambda: Credit(user_id="u", key="k", amount=1, reason="r", metadata={"a": 1}),  # type: ignore[dict-item]
        lambda: Credit(
            user_id="u", key="k", amount=1, reason="r", metadata={str(i): "" for i in range(21)}
        ),
        lambda: Adjust(user_id="u", key="k", amount=0, reason="r"),
        lambda: Adjust(user_id="u", key="k", amount=-AMOUNT_MAX - 1, reason="r"),
        lambda: PlaceHold(user_id="u", key="k", amount=1, ttl_s=0),
        lambda: PlaceHold(user_id="u", key="k", amount=1, ttl_s=HOLD_TTL_S_MAX + 1),
        lambda: PlaceHold(user_id="u", key="k", amount=1, job_id="j" * 201),
        lambda: Capture(user_id="u", key="k", hold_id=HOLD_ID, amount=-1),
        lambda: Refund(user_id="u", key="k", hold_id=HOLD_ID, amount=0),
    ],
)
def test_invalid_requests_are_rejected_when_built(make: object) -> None:
    with pytest.raises(errors.InvalidRequest):
        make()  # type: ignore[operator]


def test_invalid_request_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="amount"):
        PlaceHold(user_id="u", key="k", amount=0)


def test_digest_ignores_user_and_key_but_not_what_is_asked() -> None:
    base = PlaceHold(user_id="u", key="k", amount=5, job_id="j")
    assert request_digest(base) == request_digest(replace(base, user_id="v", key="other"))
    assert request_digest(base) != request_digest(replace(base, amount=6))
    assert request_digest(base) != request_digest(replace(base, metadata={"x": "y"}))
    grant = Credit(user_id="u", key="k", amount=5, reason="r")
    assert request_digest(grant) != request_digest(replace(grant, purchase=True))
    assert Expire("u", HOLD_ID).key == f"system:expiry:{HOLD_ID}"


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


# -- Results and errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status.INSUFFICIENT_CREDITS, errors.InsufficientCredits),
        (Status.HOLD_NOT_FOUND, errors.HoldNotFound),
        (Status.ALREADY_CAPTURED, errors.HoldResolved),
        (Status.ALREADY_RELEASED, errors.HoldResolved),
        (Status.ALREADY_EXPIRED, errors.HoldResolved),
        (Status.EXISTS_WITH_DIFFERENT_REQUEST, errors.IdempotencyConflict),
        (Status.NOT_CAPTURED, errors.RefundRejected),
        (Status.EXCEEDS_CAPTURED, errors.RefundRejected),
        (Status.NOT_EXPIRED, errors.Refused),
    ],
)
def test_refusals_raise_their_error(status: Status, error: type[errors.Refused]) -> None:
    result = Result(status=status, account=Account("u", 10, 4), required=9)
    with pytest.raises(error) as caught:
        result.raise_for_status()
    assert caught.value.status == status
    if isinstance(caught.value, errors.InsufficientCredits):
        assert (caught.value.available, caught.value.required) == (6, 9)
        assert "9 needed, 6 available" in str(caught.value)


def test_recorded_results_do_not_raise() -> None:
    for status in (Status.CREATED, Status.ALREADY_EXISTS):
        result = Result(status=status, account=Account("u"))
        assert result.raise_for_status() is result


# -- audit ------------------------------------------------------------------------------------


async def sample_ledger() -> UserLedger:
    """A valid ledger with every kind of transaction, to corrupt one thing at a time."""
    clock_now = [NOW]
    store = MemoryLedgerStore(lambda: clock_now[0])
    await store.execute(Credit(user_id="u", key="g", amount=100, reason="signup"))
    await store.execute(Credit(user_id="u", key="p", amount=50, reason="pi_1", purchase=True))
    holds = []
    for i in range(4):
        result = await store.execute(PlaceHold(user_id="u", key=f"h{i}", amount=10, ttl_s=60))
        assert result.hold is not None
        holds.append(result.hold.id)
    await store.execute(Capture(user_id="u", key="c", hold_id=holds[0], amount=8))
    await store.execute(Refund(user_id="u", key="rf", hold_id=holds[0], amount=3))
    await store.execute(Release(user_id="u", key="r", hold_id=holds[1]))
    await store.execute(Adjust(user_id="u", key="a", amount=-2, reason="fix"))
    clock_now[0] += timedelta(seconds=60)
    await store.execute(Expire("u", holds[2]))
    clock_now[0] -= timedelta(seconds=60)
    ledgers = [ledger async for ledger in store.ledgers()]
    assert len(ledgers) == 1
    return ledgers[0]


def rules(ledger: UserLedger) -> set[str]:
    return {v.rule for v in audit(ledger)}


async def test_a_valid_ledger_passes() -> None:
    ledger = await sample_ledger()
    assert audit(ledger) == []
    assert {t.kind for t in ledger.transactions} == set(Kind)


async def test_audit_catches_a_balance_that_is_not_the_ledger_sum() -> None:
    ledger = await sample_ledger()
    assert ledger.account is not None
    broken = replace(ledger, account=replace(ledger.account, balance=ledger.account.balance + 1))
    assert rules(broken) == {"balance_is_ledger_sum"}


async def test_audit_catches_held_that_is_not_the_pending_holds() -> None:
    ledger = await sample_ledger()
    holds = [
        replace(h, status=HoldStatus.RELEASED, resolved_at=NOW)
        if h.status is HoldStatus.PENDING
        else h
        for h in ledger.holds
    ]
    assert {"held_is_pending_holds", "hold_status"} <= rules(replace(ledger, holds=holds))


async def test_audit_catches_a_negative_available_balance() -> None:
    ledger = await sample_ledger()
    assert ledger.account is not None
    account = replace(ledger.account, held=ledger.account.balance + 1)
    assert "available_non_negative" in rules(replace(ledger, account=account))


async def test_audit_catches_a_hold_captured_twice() -> None:
    ledger = await sample_ledger()
    capture = next(t for t in ledger.transactions if t.kind is Kind.CAPTURE)
    twice = [*ledger.transactions, replace(capture, id=999, key="c-again", amount=0)]
    assert "hold_resolves_once" in rules(replace(ledger, transactions=twice))


async def test_audit_catches_a_transaction_without_its_cause() -> None:
    ledger = await sample_ledger()
    orphan = [
        replace(t, hold_id=uuid.uuid4()) if t.kind is Kind.RELEASE else t
        for t in ledger.transactions
    ]
    assert "cause" in rules(replace(ledger, transactions=orphan))
    no_reason = [replace(t, reason="") if t.kind is Kind.GRANT else t for t in ledger.transactions]
    assert rules(replace(ledger, transactions=no_reason)) == {"cause"}


async def test_audit_catches_wrong_running_totals_and_order() -> None:
    ledger = await sample_ledger()
    txs = list(ledger.transactions)
    txs[3] = replace(txs[3], balance_after=txs[3].balance_after + 1)
    assert rules(replace(ledger, transactions=txs)) == {"running_totals"}
    swapped = [ledger.transactions[1], ledger.transactions[0], *ledger.transactions[2:]]
    assert "ordered" in rules(replace(ledger, transactions=swapped))


async def test_audit_catches_a_misshapen_entry() -> None:
    ledger = await sample_ledger()
    txs = [
        replace(t, amount=t.amount + 1) if t.kind is Kind.PURCHASE else t
        for t in ledger.transactions
    ]
    assert rules(replace(ledger, transactions=txs)) == {"entry_shape"}


async def test_audit_catches_refunds_beyond_the_charge_and_reused_keys() -> None:
    ledger = await sample_ledger()
    holds = [replace(h, refunded=h.captured + 1) if h.captured else h for h in ledger.holds]
    assert "hold_refunded" in rules(replace(ledger, holds=holds))
    txs = list(ledger.transactions)
    txs[1] = replace(txs[1], key=txs[0].key)
    assert rules(replace(ledger, transactions=txs)) == {"unique_keys"}


async def test_audit_catches_a_ledger_without_account() -> None:
    ledger = await sample_ledger()
    assert "account_exists" in rules(replace(ledger, account=None))
    assert audit(UserLedger("empty", None, [], [])) == []


async def test_audit_catches_misshapen_holds() -> None:
    ledger = await sample_ledger()
    txs = list(ledger.transactions)
    placed = next(t for t in txs if t.kind is Kind.HOLD)
    # A second ``hold`` transaction for one hold, a zero grant, a release of part of a hold.
    twice = [*txs, replace(placed, id=999, key="h-again")]
    assert "hold_placed_once" in rules(replace(ledger, transactions=twice))
    zero = [replace(t, amount=0, balance_delta=0) if t.kind is Kind.GRANT else t for t in txs]
    assert "entry_shape" in rules(replace(ledger, transactions=zero))
    partial = [replace(t, amount=t.amount - 1) if t.kind is Kind.RELEASE else t for t in txs]
    assert "entry_shape" in rules(replace(ledger, transactions=partial))
    holds = [replace(h, captured=h.captured + 1) if h.captured else h for h in ledger.holds]
    assert "hold_captured" in rules(replace(ledger, holds=holds))


async def test_audit_catches_a_dip_below_zero_and_a_foreign_account() -> None:
    ledger = await sample_ledger()
    assert ledger.account is not None
    txs = list(ledger.transactions)
    # Credits recorded after the holds they paid for: the running totals dip below zero.
    credited = (Kind.GRANT, Kind.PURCHASE)
    dipped = [replace(t, id=t.id + 100) if t.kind in credited else t for t in txs]
    assert "available_non_negative" in rules(
        replace(ledger, transactions=sorted(dipped, key=lambda t: t.id))
    )
    foreign = replace(ledger, account=replace(ledger.account, user_id="someone-else"))
    assert "account_exists" in rules(foreign)


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

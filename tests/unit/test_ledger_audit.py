"""The invariant checker: a valid ledger passes, and each corruption is caught by its rule."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from billing.audit import UserLedger, audit
from billing.ledger import HoldStatus, Kind
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

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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

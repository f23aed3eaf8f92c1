"""The ledger's invariants, checked over everything stored for one user.

``audit`` is what ``flowai credits check`` runs on a live database (through
``CreditService.check``) and what the property-based tests run after every step; the schema
enforces the invariants it can express as constraints (see ``docs/billing.md``). Each
violation names the rule it breaks, so a report can be read without the code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from billing.ledger import (
    HOLD_KINDS,
    RESOLVING_KINDS,
    Account,
    Hold,
    HoldStatus,
    Kind,
    Transaction,
)

__all__ = ["UserLedger", "Violation", "audit"]

_Report = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class UserLedger:
    """Everything stored for one user, read in one snapshot: what ``audit`` checks."""

    user_id: str
    account: Account | None
    holds: Sequence[Hold]
    transactions: Sequence[Transaction]  # in id order


@dataclass(frozen=True, slots=True)
class Violation:
    user_id: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.user_id}: {self.rule}: {self.detail}"


def audit(ledger: UserLedger) -> list[Violation]:
    """Check one user's ledger against every invariant; an empty list means it holds.

    - balance = sum of the ledger, held = sum of pending holds, 0 <= held <= balance;
    - each transaction's running totals, and available >= 0 after every one of them;
    - each transaction has the shape of its kind and its cause (a hold, or a reason);
    - each hold has one ``hold`` transaction and resolves at most once, as its status says;
    - idempotency keys are unique.
    """
    out: list[Violation] = []

    def report(rule: str, detail: str) -> None:
        out.append(Violation(ledger.user_id, rule, detail))

    _audit_totals(ledger, report)
    _audit_running(ledger, report)
    holds = {h.id: h for h in ledger.holds}
    for tx in ledger.transactions:
        _audit_entry(tx, holds.get(tx.hold_id) if tx.hold_id else None, report)
    _audit_holds(ledger, report)
    dupes = [k for k, n in Counter(t.key for t in ledger.transactions).items() if n > 1]
    if dupes:
        report("unique_keys", f"keys used more than once: {sorted(dupes)}")
    return out


def _audit_totals(ledger: UserLedger, report: _Report) -> None:
    account = ledger.account or Account(ledger.user_id)
    if ledger.account is None and (ledger.transactions or ledger.holds):
        report("account_exists", "transactions or holds without an account")
    if account.user_id != ledger.user_id:
        report("account_exists", f"account belongs to {account.user_id!r}")
    ledger_balance = sum(t.balance_delta for t in ledger.transactions)
    ledger_held = sum(t.held_delta for t in ledger.transactions)
    pending = sum(h.amount for h in ledger.holds if h.status is HoldStatus.PENDING)
    if account.balance != ledger_balance:
        report("balance_is_ledger_sum", f"balance {account.balance} != ledger {ledger_balance}")
    if account.held != ledger_held:
        report("held_is_ledger_sum", f"held {account.held} != ledger {ledger_held}")
    if account.held != pending:
        report("held_is_pending_holds", f"held {account.held} != pending holds {pending}")
    if account.held < 0 or account.available < 0:
        report("available_non_negative", f"balance {account.balance}, held {account.held}")


def _audit_running(ledger: UserLedger, report: _Report) -> None:
    balance = held = 0
    last_id = 0
    for tx in ledger.transactions:
        if tx.id <= last_id:
            report("ordered", f"transaction {tx.id} is not in id order")
        last_id = tx.id
        balance += tx.balance_delta
        held += tx.held_delta
        if (tx.balance_after, tx.held_after) != (balance, held):
            report(
                "running_totals",
                f"transaction {tx.id}: after ({tx.balance_after}, {tx.held_after}) "
                f"!= running ({balance}, {held})",
            )
        if held < 0 or balance - held < 0:
            report("available_non_negative", f"after transaction {tx.id}: {balance}, {held}")


def _expected_deltas(tx: Transaction, hold: Hold | None) -> tuple[int, int] | None:
    amount = tx.amount
    if tx.kind in (Kind.GRANT, Kind.PURCHASE, Kind.REFUND):
        return amount, 0
    if tx.kind is Kind.ADJUSTMENT:
        return (amount if tx.balance_delta >= 0 else -amount), 0
    if tx.kind is Kind.HOLD:
        return 0, amount
    if hold is None:
        return None
    if tx.kind is Kind.CAPTURE:
        return -amount, -hold.amount
    return 0, -hold.amount  # release, expiry


def _audit_entry(tx: Transaction, hold: Hold | None, report: _Report) -> None:
    needs_hold = tx.kind in HOLD_KINDS
    if needs_hold and hold is None:
        report("cause", f"{tx.kind} transaction {tx.id} without its hold")
    if not needs_hold and (tx.hold_id is not None or not tx.reason):
        report("cause", f"{tx.kind} transaction {tx.id} needs a reason and no hold")
    if tx.amount < 0 or (tx.amount == 0 and tx.kind is not Kind.CAPTURE):
        report("entry_shape", f"transaction {tx.id} has amount {tx.amount}")
    expected = _expected_deltas(tx, hold)
    if expected is not None and expected != (tx.balance_delta, tx.held_delta):
        report(
            "entry_shape",
            f"{tx.kind} transaction {tx.id}: deltas ({tx.balance_delta}, {tx.held_delta}) "
            f"!= {expected}",
        )
    if tx.kind in (Kind.RELEASE, Kind.EXPIRY) and hold is not None and tx.amount != hold.amount:
        report("entry_shape", f"{tx.kind} transaction {tx.id} does not void the whole hold")


def _audit_holds(ledger: UserLedger, report: _Report) -> None:
    by_hold: dict[UUID, list[Transaction]] = {}
    for tx in ledger.transactions:
        if tx.hold_id is not None:
            by_hold.setdefault(tx.hold_id, []).append(tx)
    for hold in ledger.holds:
        _audit_hold(hold, by_hold.get(hold.id, []), report)


def _audit_hold(hold: Hold, txs: Iterable[Transaction], report: _Report) -> None:
    txs = list(txs)
    placed = [t for t in txs if t.kind is Kind.HOLD]
    resolutions = [t for t in txs if t.kind in RESOLVING_KINDS]
    refunds = [t for t in txs if t.kind is Kind.REFUND]
    if len(placed) != 1 or placed[0].amount != hold.amount:
        report("hold_placed_once", f"hold {hold.id} has {len(placed)} hold transactions")
    if len(resolutions) > 1:
        report("hold_resolves_once", f"hold {hold.id} resolved {len(resolutions)} times")
    expected = 0 if hold.status is HoldStatus.PENDING else 1
    statuses = [RESOLVING_KINDS[t.kind] for t in resolutions]
    if len(resolutions) != expected or any(s is not hold.status for s in statuses):
        report("hold_status", f"hold {hold.id} is {hold.status} but resolved by {statuses}")
    captured = sum(t.amount for t in resolutions if t.kind is Kind.CAPTURE)
    if captured != hold.captured:
        report("hold_captured", f"hold {hold.id}: captured {hold.captured} != ledger {captured}")
    refunded = sum(t.amount for t in refunds)
    if refunded != hold.refunded or refunded > hold.captured:
        report(
            "hold_refunded",
            f"hold {hold.id}: refunded {hold.refunded}, ledger {refunded}, "
            f"captured {hold.captured}",
        )

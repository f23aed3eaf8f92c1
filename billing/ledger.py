"""The credit ledger's rules, free of I/O.

A store (``billing.ports.LedgerStore``) loads, under a lock on the user's account, three things:
the account, the transaction already recorded under the request's idempotency key, and the hold
the request names. ``decide`` turns that state and the request into a ``Decision``, which the
store writes in the same database transaction. The store in memory and the one on PostgreSQL
both run these rules, so they cannot disagree.

Model (after TigerBeetle's two-phase transfers):

- ``balance`` is what the user owns; ``held`` is the part reserved by pending holds;
  ``available = balance - held`` never goes below zero.
- A hold is pending until it resolves exactly once: captured (the charge is posted), released
  (voided) or expired (voided by the clock). Each step appends one transaction to the ledger.
- Capture rule: the actual cost may exceed the hold only if the user's available credits cover
  the difference; otherwise the capture is refused with ``insufficient_credits`` and the hold
  stays pending, unless the caller asked for ``cap_at_hold``, which charges the hold amount.
- A hold whose expiry time has passed is expired by the first request that touches it (capture,
  release or the sweeper), judged on the store's clock (the database's, for PostgreSQL).
- Every request carries an idempotency key, unique per user. A retry with the same key and the
  same request returns ``already_exists`` with the original transaction; with a different
  request, ``exists_with_different_request``. Refusals write nothing, so the key stays free.
- Credits are integers; there are no floats anywhere in this package.

This module holds the state (accounts, holds, entries), the ``Status`` of every outcome and
``decide``. The requests and their fingerprints are in ``billing.requests``, the caller's view
of a decision (``Result``, the error of each refusal) in ``billing.results``, and the invariant
checks over a whole ledger in ``billing.audit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID

from billing.requests import (
    Adjust,
    Capture,
    Credit,
    Expire,
    PlaceHold,
    Refund,
    Release,
    Request,
    request_digest,
)

__all__ = [
    "ALREADY_RESOLVED",
    "CONTRA_ACCOUNT",
    "HOLD_KINDS",
    "RESOLVING_KINDS",
    "Account",
    "Decision",
    "Entry",
    "Hold",
    "HoldRef",
    "HoldStatus",
    "Kind",
    "State",
    "Status",
    "Transaction",
    "decide",
]


class Status(StrEnum):
    """The outcome of one operation: precise, so callers never parse messages."""

    CREATED = "created"
    ALREADY_EXISTS = "already_exists"
    EXISTS_WITH_DIFFERENT_REQUEST = "exists_with_different_request"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    HOLD_NOT_FOUND = "hold_not_found"
    ALREADY_CAPTURED = "already_captured"
    ALREADY_RELEASED = "already_released"
    ALREADY_EXPIRED = "already_expired"
    # A refund of a hold that is still pending.
    NOT_CAPTURED = "not_captured"
    # A refund larger than what remains of the captured charge.
    EXCEEDS_CAPTURED = "exceeds_captured"
    # The sweeper asked to expire a hold whose expiry time has not passed.
    NOT_EXPIRED = "not_expired"

    @property
    def ok(self) -> bool:
        """The request is recorded: now, or by an earlier call with the same key."""
        return self in (Status.CREATED, Status.ALREADY_EXISTS)

    def transient(self) -> bool:
        """A later retry of the same request may succeed (nothing was written, the key is free)."""
        return self in (Status.INSUFFICIENT_CREDITS, Status.NOT_CAPTURED, Status.NOT_EXPIRED)


class Kind(StrEnum):
    GRANT = "grant"
    PURCHASE = "purchase"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    EXPIRY = "expiry"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class HoldStatus(StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


# Double entry: each transaction moves ``balance_delta`` into the user's account and the
# opposite out of this system account, so all accounts together always sum to zero.
CONTRA_ACCOUNT: Final[Mapping[Kind, str]] = {
    Kind.GRANT: "system:grants",
    Kind.PURCHASE: "system:sales",
    Kind.HOLD: "system:usage",
    Kind.CAPTURE: "system:usage",
    Kind.RELEASE: "system:usage",
    Kind.EXPIRY: "system:usage",
    Kind.REFUND: "system:usage",
    Kind.ADJUSTMENT: "system:adjustments",
}
HOLD_KINDS: Final = frozenset({Kind.HOLD, Kind.CAPTURE, Kind.RELEASE, Kind.EXPIRY, Kind.REFUND})
RESOLVING_KINDS: Final[Mapping[Kind, HoldStatus]] = {
    Kind.CAPTURE: HoldStatus.CAPTURED,
    Kind.RELEASE: HoldStatus.RELEASED,
    Kind.EXPIRY: HoldStatus.EXPIRED,
}
# The refusal of a request that needs a pending hold, by what the hold became.
ALREADY_RESOLVED: Final[Mapping[HoldStatus, Status]] = {
    HoldStatus.CAPTURED: Status.ALREADY_CAPTURED,
    HoldStatus.RELEASED: Status.ALREADY_RELEASED,
    HoldStatus.EXPIRED: Status.ALREADY_EXPIRED,
}


# -- State ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.held

    def moved(self, balance_delta: int, held_delta: int) -> Account:
        return Account(self.user_id, self.balance + balance_delta, self.held + held_delta)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    id: UUID
    user_id: str
    amount: int
    status: HoldStatus
    created_at: datetime
    expires_at: datetime
    job_id: str | None = None
    captured: int = 0
    refunded: int = 0
    resolved_at: datetime | None = None

    def due(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class HoldRef:
    user_id: str
    hold_id: UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A transaction to append. The store gives it an id and a time (``Transaction``)."""

    user_id: str
    kind: Kind
    amount: int
    balance_delta: int
    held_delta: int
    balance_after: int
    held_after: int
    key: str
    request_digest: str
    hold_id: UUID | None = None
    job_id: str | None = None
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def contra_account(self) -> str:
        return CONTRA_ACCOUNT[self.kind]

    def recorded(self, *, id: int, created_at: datetime) -> Transaction:
        """This entry as the store recorded it."""
        values = {f.name: getattr(self, f.name) for f in fields(Entry)}
        return Transaction(**values, id=id, created_at=created_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction(Entry):
    """A recorded transaction: ids grow with time for each user."""

    id: int
    created_at: datetime


# -- Decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    """What the store read, under the account lock, before deciding."""

    account: Account
    # The transaction recorded under the request's key, if the key was used before.
    replay: Transaction | None = None
    # The hold the request names (or the replayed transaction's hold), if it is the user's.
    hold: Hold | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    status: Status
    account: Account  # after the decision
    hold: Hold | None = None  # after the decision
    entry: Entry | None = None  # to append; None: nothing to write
    hold_changed: bool = False  # the hold is new or changed and must be written
    replay: Transaction | None = None  # the original transaction, for ``already_exists``


def _entry(
    account: Account,
    kind: Kind,
    amount: int,
    *,
    balance_delta: int,
    held_delta: int,
    key: str,
    digest: str,
    hold: Hold | None = None,
    reason: str = "",
    metadata: Mapping[str, str] | None = None,
) -> Entry:
    after = account.moved(balance_delta, held_delta)
    return Entry(
        user_id=account.user_id,
        kind=kind,
        amount=amount,
        balance_delta=balance_delta,
        held_delta=held_delta,
        balance_after=after.balance,
        held_after=after.held,
        key=key,
        request_digest=digest,
        hold_id=hold.id if hold else None,
        job_id=hold.job_id if hold else None,
        reason=reason,
        metadata=dict(metadata or {}),
    )


def _written(
    entry: Entry, account: Account, hold: Hold | None = None, *, status: Status = Status.CREATED
) -> Decision:
    after = account.moved(entry.balance_delta, entry.held_delta)
    # Postconditions: the arithmetic that the database constraints also enforce.
    assert after.held >= 0 and after.available >= 0, (entry, account)
    return Decision(
        status=status, account=after, hold=hold, entry=entry, hold_changed=hold is not None
    )


def _refused(status: Status, state: State) -> Decision:
    return Decision(status=status, account=state.account, hold=state.hold)


def _resolve(hold: Hold, status: HoldStatus, now: datetime, captured: int = 0) -> Hold:
    return replace(hold, status=status, captured=captured, resolved_at=now)


def _expire(state: State, hold: Hold, now: datetime, status: Status) -> Decision:
    request = Expire(hold.user_id, hold.id)
    entry = _entry(
        state.account,
        Kind.EXPIRY,
        hold.amount,
        balance_delta=0,
        held_delta=-hold.amount,
        key=request.key,
        digest=request_digest(request),
        hold=hold,
    )
    return _written(entry, state.account, _resolve(hold, HoldStatus.EXPIRED, now), status=status)


def _pending_hold(state: State, now: datetime) -> Hold | Decision:
    """The pending hold to resolve, or the decision that ends the request here."""
    hold = state.hold
    if hold is None:
        return _refused(Status.HOLD_NOT_FOUND, state)
    if hold.status is not HoldStatus.PENDING:
        return _refused(ALREADY_RESOLVED[hold.status], state)
    if hold.due(now):
        # The deadline has passed: the hold expires now, whoever touches it first.
        return _expire(state, hold, now, Status.ALREADY_EXPIRED)
    return hold


def _credit(request: Credit, state: State, digest: str) -> Decision:
    kind = Kind.PURCHASE if request.purchase else Kind.GRANT
    entry = _entry(
        state.account,
        kind,
        request.amount,
        balance_delta=request.amount,
        held_delta=0,
        key=request.key,
        digest=digest,
        reason=request.reason,
        metadata=request.metadata,
    )
    return _written(entry, state.account)


def _adjust(request: Adjust, state: State, digest: str) -> Decision:
    if state.account.available + request.amount < 0:
        return _refused(Status.INSUFFICIENT_CREDITS, state)
    entry = _entry(
        state.account,
        Kind.ADJUSTMENT,
        abs(request.amount),
        balance_delta=request.amount,
        held_delta=0,
        key=request.key,
        digest=digest,
        reason=request.reason,
        metadata=request.metadata,
    )
    return _written(entry, state.account)


def _place_hold(
    request: PlaceHold, state: State, digest: str, now: datetime, new_hold_id: UUID
) -> Decision:
    if state.account.available < request.amount:
        return _refused(Status.INSUFFICIENT_CREDITS, state)
    hold = Hold(
        id=new_hold_id,
        user_id=request.user_id,
        amount=request.amount,
        status=HoldStatus.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=request.ttl_s),
        job_id=request.job_id,
    )
    entry = _entry(
        state.account,
        Kind.HOLD,
        request.amount,
        balance_delta=0,
        held_delta=request.amount,
        key=request.key,
        digest=digest,
        hold=hold,
        metadata=request.metadata,
    )
    return _written(entry, state.account, hold)


def _capture(request: Capture, state: State, digest: str, now: datetime) -> Decision:
    hold = _pending_hold(state, now)
    if isinstance(hold, Decision):
        return hold
    charge = request.amount
    if charge > hold.amount and state.account.available < charge - hold.amount:
        if not request.cap_at_hold:
            return _refused(Status.INSUFFICIENT_CREDITS, state)
        charge = hold.amount
    entry = _entry(
        state.account,
        Kind.CAPTURE,
        charge,
        balance_delta=-charge,
        held_delta=-hold.amount,
        key=request.key,
        digest=digest,
        hold=hold,
        metadata=request.metadata,
    )
    return _written(entry, state.account, _resolve(hold, HoldStatus.CAPTURED, now, charge))


def _release(request: Release, state: State, digest: str, now: datetime) -> Decision:
    hold = _pending_hold(state, now)
    if isinstance(hold, Decision):
        return hold
    entry = _entry(
        state.account,
        Kind.RELEASE,
        hold.amount,
        balance_delta=0,
        held_delta=-hold.amount,
        key=request.key,
        digest=digest,
        hold=hold,
        metadata=request.metadata,
    )
    return _written(entry, state.account, _resolve(hold, HoldStatus.RELEASED, now))


def _refund(request: Refund, state: State, digest: str) -> Decision:
    hold = state.hold
    if hold is None:
        return _refused(Status.HOLD_NOT_FOUND, state)
    if hold.status is HoldStatus.PENDING:
        return _refused(Status.NOT_CAPTURED, state)
    if hold.status is not HoldStatus.CAPTURED:
        return _refused(ALREADY_RESOLVED[hold.status], state)
    if hold.refunded + request.amount > hold.captured:
        return _refused(Status.EXCEEDS_CAPTURED, state)
    entry = _entry(
        state.account,
        Kind.REFUND,
        request.amount,
        balance_delta=request.amount,
        held_delta=0,
        key=request.key,
        digest=digest,
        hold=hold,
        reason=request.reason,
        metadata=request.metadata,
    )
    return _written(entry, state.account, replace(hold, refunded=hold.refunded + request.amount))


def _sweep(request: Expire, state: State, now: datetime) -> Decision:
    hold = state.hold
    if hold is None:
        return _refused(Status.HOLD_NOT_FOUND, state)
    if hold.status is not HoldStatus.PENDING:
        return _refused(ALREADY_RESOLVED[hold.status], state)
    if not hold.due(now):
        return _refused(Status.NOT_EXPIRED, state)
    return _expire(state, hold, now, Status.CREATED)


def decide(request: Request, state: State, *, now: datetime, new_hold_id: UUID) -> Decision:
    """Apply the ledger's rules to one request. ``new_hold_id`` names a hold it creates."""
    assert state.account.user_id == request.user_id
    assert state.hold is None or state.hold.user_id == request.user_id
    digest = request_digest(request)
    if state.replay is not None:
        same = state.replay.request_digest == digest
        return Decision(
            status=Status.ALREADY_EXISTS if same else Status.EXISTS_WITH_DIFFERENT_REQUEST,
            account=state.account,
            hold=state.hold,
            replay=state.replay if same else None,
        )
    if isinstance(request, Credit):
        return _credit(request, state, digest)
    if isinstance(request, Adjust):
        return _adjust(request, state, digest)
    if isinstance(request, PlaceHold):
        return _place_hold(request, state, digest, now, new_hold_id)
    if isinstance(request, Capture):
        return _capture(request, state, digest, now)
    if isinstance(request, Release):
        return _release(request, state, digest, now)
    if isinstance(request, Refund):
        return _refund(request, state, digest)
    return _sweep(request, state, now)

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
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID

from billing.errors import (
    HoldNotFound,
    HoldResolved,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidRequest,
    RefundRejected,
    Refused,
)

__all__ = [
    "AMOUNT_MAX",
    "CONTRA_ACCOUNT",
    "HOLD_TTL_S_DEFAULT",
    "HOLD_TTL_S_MAX",
    "Account",
    "Adjust",
    "Capture",
    "Credit",
    "Decision",
    "Entry",
    "Expire",
    "Hold",
    "HoldRef",
    "HoldStatus",
    "Kind",
    "PlaceHold",
    "Refund",
    "Release",
    "Request",
    "Result",
    "State",
    "Status",
    "Transaction",
    "UserLedger",
    "Violation",
    "audit",
    "decide",
    "hold_id_of",
    "opens_account",
    "refusal",
    "request_digest",
    "result_of",
]

# Limits: every input is bounded.
AMOUNT_MAX: Final = 10**12
KEY_LENGTH_MAX: Final = 200
USER_ID_LENGTH_MAX: Final = 200
JOB_ID_LENGTH_MAX: Final = 200
REASON_LENGTH_MAX: Final = 500
METADATA_ENTRIES_MAX: Final = 20
METADATA_TEXT_LENGTH_MAX: Final = 500
HOLD_TTL_S_DEFAULT: Final = 3600
HOLD_TTL_S_MAX: Final = 7 * 24 * 3600
# Keys the ledger writes itself (expiries); callers may not use this prefix.
SYSTEM_KEY_PREFIX: Final = "system:"

_Report = Callable[[str, str], None]


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
_ALREADY: Final[Mapping[HoldStatus, Status]] = {
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


# -- Requests ---------------------------------------------------------------------------------


def _check_text(name: str, value: str | None, length_max: int, *, required: bool) -> None:
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{name} is required")
        return
    if len(value) > length_max:
        raise InvalidRequest(f"{name} is longer than {length_max} characters")


def _check_common(user_id: str, key: str, metadata: Mapping[str, str]) -> None:
    _check_text("user_id", user_id, USER_ID_LENGTH_MAX, required=True)
    _check_text("key", key, KEY_LENGTH_MAX, required=True)
    if key.startswith(SYSTEM_KEY_PREFIX):
        raise InvalidRequest(f"keys starting with {SYSTEM_KEY_PREFIX!r} are reserved")
    if len(metadata) > METADATA_ENTRIES_MAX:
        raise InvalidRequest(f"metadata has more than {METADATA_ENTRIES_MAX} entries")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidRequest("metadata keys and values must be strings")
        _check_text("metadata key", k, METADATA_TEXT_LENGTH_MAX, required=True)
        _check_text("metadata value", v, METADATA_TEXT_LENGTH_MAX, required=False)


def _check_amount(amount: int, *, low: int = 1) -> None:
    # bool is an int subclass; a True amount is a bug, not one credit.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidRequest("amount must be an integer number of credits")
    if not low <= amount <= AMOUNT_MAX:
        raise InvalidRequest(f"amount must be between {low} and {AMOUNT_MAX}")
    if amount == 0 and low < 0:
        raise InvalidRequest("amount must not be zero")


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """Add credits: a free grant, or a purchase (``purchase=True``). ``reason`` is its cause."""

    user_id: str
    key: str
    amount: int
    reason: str
    purchase: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)
        _check_amount(self.amount)
        _check_text("reason", self.reason, REASON_LENGTH_MAX, required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Adjust:
    """A correction by an operator: ``amount`` is signed and never makes available negative."""

    user_id: str
    key: str
    amount: int
    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)
        _check_amount(self.amount, low=-AMOUNT_MAX)
        _check_text("reason", self.reason, REASON_LENGTH_MAX, required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceHold:
    """Reserve the estimated cost of a job; refused when available < amount."""

    user_id: str
    key: str
    amount: int
    ttl_s: int = HOLD_TTL_S_DEFAULT
    job_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)
        _check_amount(self.amount)
        if not isinstance(self.ttl_s, int) or not 1 <= self.ttl_s <= HOLD_TTL_S_MAX:
            raise InvalidRequest(f"ttl_s must be between 1 and {HOLD_TTL_S_MAX}")
        _check_text("job_id", self.job_id, JOB_ID_LENGTH_MAX, required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """Charge the actual cost of a held job (see the capture rule in the module docstring)."""

    user_id: str
    key: str
    hold_id: UUID
    amount: int
    cap_at_hold: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)
        _check_amount(self.amount, low=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """Void a hold: the job failed or was cancelled."""

    user_id: str
    key: str
    hold_id: UUID
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refund:
    """Give back part or all of a captured charge."""

    user_id: str
    key: str
    hold_id: UUID
    amount: int
    reason: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common(self.user_id, self.key, self.metadata)
        _check_amount(self.amount)
        _check_text("reason", self.reason, REASON_LENGTH_MAX, required=False)


@dataclass(frozen=True, slots=True)
class Expire:
    """Void a hold whose expiry time has passed (the sweeper's request). Its key is fixed."""

    user_id: str
    hold_id: UUID

    @property
    def key(self) -> str:
        return f"{SYSTEM_KEY_PREFIX}expiry:{self.hold_id}"


Request = Credit | Adjust | PlaceHold | Capture | Release | Refund | Expire


def hold_id_of(request: Request) -> UUID | None:
    """The hold a request names, if any."""
    if isinstance(request, Capture | Release | Refund | Expire):
        return request.hold_id
    return None


def opens_account(request: Request) -> bool:
    """Whether the request may create the user's account (only adding credits can)."""
    return isinstance(request, Credit) or (isinstance(request, Adjust) and request.amount > 0)


def request_digest(request: Request) -> str:
    """A fingerprint of everything a request asks for, to tell a retry from a different request."""
    body: dict[str, object] = {"type": type(request).__name__}
    for f in fields(request):
        if f.name not in ("user_id", "key"):
            value = getattr(request, f.name)
            body[f.name] = dict(value) if isinstance(value, Mapping) else value
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What an operation returns to its caller."""

    status: Status
    account: Account
    hold: Hold | None = None
    # The transaction written (``created``), the original one (``already_exists``), or the
    # expiry a capture or release ran into (``already_expired``).
    transaction: Transaction | None = None
    # For ``insufficient_credits``: the available credits the operation needed (for a
    # capture, the part of the cost above the hold).
    required: int = 0

    @property
    def ok(self) -> bool:
        return self.status.ok

    def raise_for_status(self) -> Result:
        """Return self when recorded, else raise the matching ``billing.errors.Refused``."""
        if self.ok:
            return self
        raise refusal(self)


def refusal(result: Result) -> Refused:
    status = result.status
    message = _MESSAGES[status]
    if status is Status.INSUFFICIENT_CREDITS:
        return InsufficientCredits(
            status,
            f"insufficient credits: {result.required} needed, {result.account.available} available",
            available=result.account.available,
            required=result.required,
        )
    if status is Status.HOLD_NOT_FOUND:
        return HoldNotFound(status, message)
    if status is Status.EXISTS_WITH_DIFFERENT_REQUEST:
        return IdempotencyConflict(status, message)
    if status in (Status.NOT_CAPTURED, Status.EXCEEDS_CAPTURED):
        return RefundRejected(status, message)
    if status in _ALREADY.values():
        return HoldResolved(status, message)
    return Refused(status, message)


_MESSAGES: Final[Mapping[Status, str]] = {
    Status.CREATED: "created",
    Status.ALREADY_EXISTS: "already recorded under this key",
    Status.EXISTS_WITH_DIFFERENT_REQUEST: "this key was already used for a different request",
    Status.INSUFFICIENT_CREDITS: "insufficient credits",
    Status.HOLD_NOT_FOUND: "no such hold",
    Status.ALREADY_CAPTURED: "the hold was already captured",
    Status.ALREADY_RELEASED: "the hold was already released",
    Status.ALREADY_EXPIRED: "the hold has expired",
    Status.NOT_CAPTURED: "the hold has not been captured",
    Status.EXCEEDS_CAPTURED: "the refund exceeds what remains of the captured charge",
    Status.NOT_EXPIRED: "the hold's expiry time has not passed",
}


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
        return _refused(_ALREADY[hold.status], state)
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
        return _refused(_ALREADY[hold.status], state)
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
        return _refused(_ALREADY[hold.status], state)
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


def result_of(decision: Decision, request: Request, written: Transaction | None) -> Result:
    """The caller's view of a decision once the store has written ``decision.entry``."""
    transaction = written if written is not None else decision.replay
    required = 0
    if decision.status is Status.INSUFFICIENT_CREDITS:
        required = _required(request, decision)
    return Result(
        status=decision.status,
        account=decision.account,
        hold=decision.hold,
        transaction=transaction,
        required=required,
    )


def _required(request: Request, decision: Decision) -> int:
    if isinstance(request, PlaceHold):
        return request.amount
    if isinstance(request, Adjust):
        return -request.amount
    # Only a capture above its hold is refused for credits besides the two above.
    assert isinstance(request, Capture) and decision.hold is not None
    return request.amount - decision.hold.amount


# -- Invariants -------------------------------------------------------------------------------


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

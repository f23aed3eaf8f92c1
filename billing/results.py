"""What an operation returns to its caller: a ``Result``, and the error each refusal raises.

``decide`` (in ``billing.ledger``) says what to write; once the store has written it,
``result_of`` turns the decision into the caller's ``Result``. ``Result.raise_for_status``
raises the ``billing.errors.Refused`` subclass that matches a refusal's ``Status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from billing.errors import (
    HoldNotFound,
    HoldResolved,
    IdempotencyConflict,
    InsufficientCredits,
    RefundRejected,
    Refused,
)
from billing.ledger import ALREADY_RESOLVED, Account, Decision, Hold, Status, Transaction
from billing.requests import Adjust, Capture, PlaceHold, Request

__all__ = ["Result", "refusal", "result_of"]


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
    if status in ALREADY_RESOLVED.values():
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

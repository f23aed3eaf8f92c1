"""Results: a refusal raises its ``billing.errors`` error, a recorded result does not."""

from __future__ import annotations

import pytest

from billing import errors
from billing.ledger import Account, Status
from billing.results import Result


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

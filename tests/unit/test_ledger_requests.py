"""The ledger's requests: checked when built, and fingerprinted."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from billing import errors
from billing.requests import (
    AMOUNT_MAX,
    HOLD_TTL_S_MAX,
    Adjust,
    Capture,
    Credit,
    Expire,
    PlaceHold,
    Refund,
    request_digest,
)

HOLD_ID = uuid.UUID(int=7)


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

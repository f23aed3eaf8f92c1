"""The requests a ledger accepts, checked when built, and their fingerprints.

Each request is a frozen dataclass whose ``__post_init__`` refuses bad input with
``billing.errors.InvalidRequest`` (every field is bounded by a limit below), so ``decide`` only
ever sees well-formed requests. ``request_digest`` fingerprints what a request asks for; the
store keeps it with the transaction, and ``decide`` compares it to tell a retry under the same
idempotency key from a different request. A fingerprint is stored, so what it covers (the class
name and every field but ``user_id`` and ``key``) must not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Final
from uuid import UUID

from billing.errors import InvalidRequest

__all__ = [
    "AMOUNT_MAX",
    "HOLD_TTL_S_DEFAULT",
    "HOLD_TTL_S_MAX",
    "Adjust",
    "Capture",
    "Credit",
    "Expire",
    "PlaceHold",
    "Refund",
    "Release",
    "Request",
    "hold_id_of",
    "opens_account",
    "request_digest",
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
    """Charge the actual cost of a held job (see the capture rule in ``billing.ledger``)."""

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

"""Errors of the billing package.

::

    CreditError
    ├── InvalidRequest (also ValueError)   a request that can never succeed: bad amount, key ...
    ├── UnknownPrice (also KeyError)       no price for this product and meter
    └── Refused                            the ledger refused an operation; ``status`` says why
        ├── InsufficientCredits            available < needed (a top-up may change this)
        ├── HoldNotFound                   no such hold for this user
        ├── HoldResolved                   the hold was already captured, released or expired
        ├── IdempotencyConflict            the key was already used for a different request
        └── RefundRejected                 the hold was not captured, or the refund exceeds it

Operations return a ``billing.results.Result``; ``Result.raise_for_status()`` turns a refusal
into the matching ``Refused`` subclass for callers that prefer exceptions.
"""

from __future__ import annotations

__all__ = [
    "CreditError",
    "HoldNotFound",
    "HoldResolved",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidRequest",
    "RefundRejected",
    "Refused",
    "UnknownPrice",
]


class CreditError(Exception):
    """Base of every billing error."""


class InvalidRequest(CreditError, ValueError):
    pass


class UnknownPrice(CreditError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown price"


class Refused(CreditError):
    """An operation the ledger refused; nothing was written."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InsufficientCredits(Refused):
    def __init__(self, status: str, message: str, *, available: int, required: int) -> None:
        super().__init__(status, message)
        self.available = available
        self.required = required


class HoldNotFound(Refused):
    pass


class HoldResolved(Refused):
    pass


class IdempotencyConflict(Refused):
    pass


class RefundRejected(Refused):
    pass

"""What billing needs from storage: one small port, with an in-memory twin (``billing.memory``)
and a PostgreSQL adapter (``persistence.ledger_pg``), both held to one contract test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol
from uuid import UUID

from billing.audit import UserLedger
from billing.ledger import Account, Hold, HoldRef, Transaction
from billing.requests import Request
from billing.results import Result

__all__ = ["LedgerStore"]


class LedgerStore(Protocol):
    async def execute(self, request: Request) -> Result:
        """Run one operation atomically: lock the account, ``billing.ledger.decide``, write.

        Safe under any concurrency and idempotent by ``request.key``; a crash leaves either
        the whole operation or nothing. Times are the store's clock.
        """
        ...

    async def account(self, user_id: str) -> Account:
        """The user's balance and held credits (zero for a user never credited)."""
        ...

    async def transactions(
        self, user_id: str, *, before_id: int | None = None, limit: int = 50
    ) -> list[Transaction]:
        """The user's ledger, newest first, with ids below ``before_id`` (keyset pagination)."""
        ...

    async def hold(self, user_id: str, hold_id: UUID) -> Hold | None: ...

    async def due_holds(self, limit: int) -> list[HoldRef]:
        """Pending holds whose expiry time has passed on the store's clock, oldest first."""
        ...

    def ledgers(self) -> AsyncIterator[UserLedger]:
        """Every user's account, holds and transactions, from one consistent snapshot."""
        ...

"""The credit operations the AI and render services call, over any ``LedgerStore``.

A job's life: ``place_hold`` for its estimated cost (``PriceTable.credits`` of the estimated
usage) before calling the provider; then ``capture`` the actual cost from the provider's usage,
or ``release`` on failure. Every call takes an idempotency key that the caller derives from its
own job id and keeps for retries (the job runner's are ``f"job:{job_id}:hold"``,
``f"job:{job_id}:capture"`` and ``f"job:{job_id}:release"``), so a retry after a timeout or a
crash can never charge twice. Abandoned holds expire: run
``expire_due`` periodically (``sweep_forever``).

Operations return a ``Result`` whose ``status`` says exactly what happened;
``result.raise_for_status()`` raises ``billing.errors.InsufficientCredits`` and friends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from billing.ledger import (
    HOLD_TTL_S_DEFAULT,
    Account,
    Adjust,
    Capture,
    Credit,
    Expire,
    PlaceHold,
    Refund,
    Release,
    Result,
    Status,
    Transaction,
    Violation,
    audit,
)
from billing.ports import LedgerStore

__all__ = ["AuditReport", "CreditService"]

log = logging.getLogger(__name__)

SWEEP_BATCH_MAX: Final = 1000
TRANSACTIONS_PAGE_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class AuditReport:
    users: int = 0
    holds: int = 0
    transactions: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


class CreditService:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def grant(
        self,
        user_id: str,
        amount: int,
        *,
        key: str,
        reason: str,
        purchase: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        """Add credits: a free grant, or a purchase (``reason`` names the payment)."""
        request = Credit(
            user_id=user_id,
            key=key,
            amount=amount,
            reason=reason,
            purchase=purchase,
            metadata=dict(metadata or {}),
        )
        return await self.store.execute(request)

    async def adjust(
        self,
        user_id: str,
        amount: int,
        *,
        key: str,
        reason: str,
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        """An operator's signed correction; refused if it would make available negative."""
        request = Adjust(
            user_id=user_id, key=key, amount=amount, reason=reason, metadata=dict(metadata or {})
        )
        return await self.store.execute(request)

    async def place_hold(
        self,
        user_id: str,
        amount: int,
        *,
        key: str,
        job_id: str | None = None,
        ttl_s: int = HOLD_TTL_S_DEFAULT,
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        """Reserve ``amount`` credits; ``insufficient_credits`` when available < amount."""
        request = PlaceHold(
            user_id=user_id,
            key=key,
            amount=amount,
            ttl_s=ttl_s,
            job_id=job_id,
            metadata=dict(metadata or {}),
        )
        return await self.store.execute(request)

    async def capture(
        self,
        user_id: str,
        hold_id: UUID,
        amount: int,
        *,
        key: str,
        cap_at_hold: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        """Charge the actual cost; above the hold only if available covers the difference."""
        request = Capture(
            user_id=user_id,
            key=key,
            hold_id=hold_id,
            amount=amount,
            cap_at_hold=cap_at_hold,
            metadata=dict(metadata or {}),
        )
        return await self.store.execute(request)

    async def release(
        self,
        user_id: str,
        hold_id: UUID,
        *,
        key: str,
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        request = Release(user_id=user_id, key=key, hold_id=hold_id, metadata=dict(metadata or {}))
        return await self.store.execute(request)

    async def refund(
        self,
        user_id: str,
        hold_id: UUID,
        amount: int,
        *,
        key: str,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> Result:
        """Give back up to what remains of a captured charge."""
        request = Refund(
            user_id=user_id,
            key=key,
            hold_id=hold_id,
            amount=amount,
            reason=reason,
            metadata=dict(metadata or {}),
        )
        return await self.store.execute(request)

    async def expire_due(self, *, limit: int = 500) -> int:
        """Expire up to ``limit`` holds whose time has passed; returns how many this call did.

        Safe to run from several processes at once: each hold expires exactly once.
        """
        limit = max(1, min(limit, SWEEP_BATCH_MAX))
        expired = 0
        for ref in await self.store.due_holds(limit):
            result = await self.store.execute(Expire(ref.user_id, ref.hold_id))
            expired += result.status is Status.CREATED
        return expired

    async def sweep_forever(self, *, interval_s: float = 30.0, limit: int = 500) -> None:
        """Run ``expire_due`` every ``interval_s`` until cancelled (the server's lifespan)."""
        while True:
            try:
                if expired := await self.expire_due(limit=limit):
                    log.info("expired holds", extra={"count": expired})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hold sweep failed; retrying at the next interval")
            await asyncio.sleep(interval_s)

    async def balance(self, user_id: str) -> Account:
        return await self.store.account(user_id)

    async def transactions(
        self, user_id: str, *, before_id: int | None = None, limit: int = 50
    ) -> list[Transaction]:
        limit = max(1, min(limit, TRANSACTIONS_PAGE_MAX))
        return await self.store.transactions(user_id, before_id=before_id, limit=limit)

    async def check(self) -> AuditReport:
        """Scan the whole ledger and check every invariant (``flowai credits check``)."""
        users = holds = transactions = 0
        violations: list[Violation] = []
        async for ledger in self.store.ledgers():
            users += 1
            holds += len(ledger.holds)
            transactions += len(ledger.transactions)
            violations.extend(audit(ledger))
        return AuditReport(users, holds, transactions, violations)

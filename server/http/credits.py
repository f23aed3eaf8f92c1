"""REST routes for credits (balance and ledger), read under the caller's identity.

Both reads run as ``flowai_app_user`` with the caller's id set, so row-level security limits
them to the caller's own rows whatever the query says.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from billing.ledger import Transaction
from billing.service import CreditService
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.schemas import errors

router = APIRouter(prefix="/api/credits", tags=["credits"])

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100


class CreditsOut(BaseModel):
    balance: int
    held: int
    available: int


class TransactionOut(BaseModel):
    id: int
    kind: str
    amount: int
    balance_delta: int
    held_delta: int
    balance_after: int
    held_after: int
    hold_id: uuid.UUID | None
    job_id: str | None
    reason: str
    metadata: dict[str, str]
    created_at: str


class TransactionsPage(BaseModel):
    items: list[TransactionOut]
    # Pass as ``before`` to get the next (older) page; null on the last page.
    next_before: int | None


def _credits(services: Services) -> CreditService:
    return services.credits


def _out(tx: Transaction) -> TransactionOut:
    return TransactionOut(
        id=tx.id,
        kind=tx.kind.value,
        amount=tx.amount,
        balance_delta=tx.balance_delta,
        held_delta=tx.held_delta,
        balance_after=tx.balance_after,
        held_after=tx.held_after,
        hold_id=tx.hold_id,
        job_id=tx.job_id,
        reason=tx.reason,
        metadata=dict(tx.metadata),
        created_at=tx.created_at.isoformat(),
    )


@router.get("", response_model=CreditsOut, responses=errors(401))
async def get_credits(user: CurrentUser, services: ServicesDep) -> CreditsOut:
    account = await _credits(services).balance(user.user_id)
    return CreditsOut(balance=account.balance, held=account.held, available=account.available)


@router.get("/transactions", response_model=TransactionsPage, responses=errors(401, 422))
async def list_transactions(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="id from next_before")
    ] = None,
) -> TransactionsPage:
    """The caller's ledger, newest first."""
    # One row more than the page tells whether another page follows.
    rows = await _credits(services).transactions(user.user_id, before_id=before, limit=limit + 1)
    page = rows[:limit]
    next_before = page[-1].id if len(rows) > limit else None
    return TransactionsPage(items=[_out(tx) for tx in page], next_before=next_before)

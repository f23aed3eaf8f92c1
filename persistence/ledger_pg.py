"""``billing.ports.LedgerStore`` on PostgreSQL (queries in ``persistence/sql/ledger.sql``).

Each operation is one transaction: lock the user's ``user_credits`` row (``FOR UPDATE``), read
the idempotency key's transaction and the hold, run ``billing.ledger.decide``, and write the
decision in a single statement. The row lock serialises one user's operations, so concurrent
requests see each other's effects; the schema's constraints (``0002_billing.sql``) hold the
invariants even if this code were wrong: a second resolution of a hold, a negative available
balance or a duplicate key fail the whole transaction, which then writes nothing.

Reads made for a user (balance, ledger, a hold) run under that user's identity, so row-level
security applies. The audit reads everything in one repeatable-read snapshot.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from billing.audit import UserLedger
from billing.ledger import (
    Account,
    Decision,
    Hold,
    HoldRef,
    HoldStatus,
    Kind,
    State,
    Transaction,
    decide,
)
from billing.requests import Request, hold_id_of, opens_account
from billing.results import Result, result_of

if TYPE_CHECKING:
    import asyncpg

    from persistence.db import Connection, Database

__all__ = ["PgLedgerStore", "ledger_queries"]

SQL_PATH: Final = Path(__file__).parent / "sql" / "ledger.sql"
_QUERY_NAME = re.compile(r"^-- name: (\w+) :(one|many|exec)\s*$")
AUDIT_BATCH_USERS: Final = 500


@cache
def ledger_queries() -> dict[str, str]:
    """The named queries of ``ledger.sql`` (``-- name: x :one`` headers, sqlc style)."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SQL_PATH.read_text().splitlines():
        match = _QUERY_NAME.match(line)
        if match:
            current = queries.setdefault(match[1], [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip() for name, lines in queries.items()}


def _q(name: str) -> str:
    return ledger_queries()[name]


def _metadata(value: object) -> dict[str, str]:
    # asyncpg hands jsonb over as text unless a codec is installed on the pool.
    loaded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(loaded, dict)
    return {str(k): str(v) for k, v in loaded.items()}


def _uuid(value: object) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def _transaction(row: asyncpg.Record, user_id: str, prefix: str = "") -> Transaction:
    def get(name: str) -> object:
        return row[prefix + name]

    hold_id = get("hold_id")
    return Transaction(
        id=_int(get("id")),
        user_id=user_id,
        kind=Kind(str(get("kind"))),
        amount=_int(get("amount")),
        balance_delta=_int(get("balance_delta")),
        held_delta=_int(get("held_delta")),
        balance_after=_int(get("balance_after")),
        held_after=_int(get("held_after")),
        hold_id=_uuid(hold_id) if hold_id is not None else None,
        job_id=_opt_str(get("job_id")),
        key=str(get("idempotency_key")),
        request_digest=str(get("request_digest")),
        reason=str(get("reason")),
        metadata=_metadata(get("metadata")),
        created_at=_time(get("created_at")),
    )


def _hold(row: asyncpg.Record, user_id: str, prefix: str = "") -> Hold:
    def get(name: str) -> object:
        return row[prefix + name]

    resolved_at = get("resolved_at")
    return Hold(
        id=_uuid(get("id")),
        user_id=user_id,
        amount=_int(get("amount")),
        status=HoldStatus(str(get("status"))),
        captured=_int(get("captured")),
        refunded=_int(get("refunded")),
        job_id=_opt_str(get("job_id")),
        created_at=_time(get("created_at")),
        expires_at=_time(get("expires_at")),
        resolved_at=_time(resolved_at) if resolved_at is not None else None,
    )


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _time(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


class PgLedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, request: Request) -> Result:
        async with self._db.transaction() as conn:
            return await self._execute(conn, request)

    async def _execute(self, conn: Connection, request: Request) -> Result:
        user_id = request.user_id
        lock = _q("open_account") if opens_account(request) else _q("lock_account")
        locked = await conn.fetchrow(lock, user_id)
        context = await conn.fetchrow(_q("load_context"), user_id, request.key, hold_id_of(request))
        assert context is not None
        replay = None
        if context["r_id"] is not None:
            replay = _transaction(context, user_id, prefix="r_")
        hold = _hold(context, user_id, prefix="h_") if context["h_id"] is not None else None
        account = Account(user_id)
        if locked is not None:
            account = Account(user_id, locked["balance"], locked["held"])
        state = State(account=account, replay=replay, hold=hold)
        now = context["now"]
        decision = decide(request, state, now=now, new_hold_id=uuid.uuid4())
        written = await self._apply(conn, decision, now) if decision.entry is not None else None
        return result_of(decision, request, written)

    async def _apply(self, conn: Connection, decision: Decision, now: datetime) -> Transaction:
        entry = decision.entry
        assert entry is not None and decision.hold_changed == (entry.hold_id is not None)
        after = decision.account
        assert (after.balance, after.held) == (entry.balance_after, entry.held_after)
        hold = decision.hold if decision.hold_changed else None
        assert hold is None or hold.id == entry.hold_id
        tx_id = await conn.fetchval(
            _q("apply"),
            entry.user_id,
            after.balance,
            after.held,
            now,
            hold.id if hold else None,
            hold.amount if hold else None,
            hold.status.value if hold else None,
            hold.captured if hold else None,
            hold.refunded if hold else None,
            entry.job_id,
            hold.created_at if hold else None,
            hold.expires_at if hold else None,
            hold.resolved_at if hold else None,
            entry.kind.value,
            entry.amount,
            entry.balance_delta,
            entry.held_delta,
            entry.key,
            entry.request_digest,
            entry.reason,
            json.dumps(dict(entry.metadata)),
        )
        if tx_id is None:
            raise RuntimeError(f"account {entry.user_id!r} vanished while locked")
        return entry.recorded(id=tx_id, created_at=now)

    async def account(self, user_id: str) -> Account:
        async with self._db.as_user(user_id) as conn:
            row = await conn.fetchrow(_q("account"), user_id)
        return Account(user_id, row["balance"], row["held"]) if row else Account(user_id)

    async def transactions(
        self, user_id: str, *, before_id: int | None = None, limit: int = 50
    ) -> list[Transaction]:
        async with self._db.as_user(user_id) as conn:
            rows = await conn.fetch(_q("transactions"), user_id, before_id, limit)
        return [_transaction(row, user_id) for row in rows]

    async def hold(self, user_id: str, hold_id: uuid.UUID) -> Hold | None:
        async with self._db.as_user(user_id) as conn:
            row = await conn.fetchrow(_q("hold"), user_id, hold_id)
        return _hold(row, user_id) if row else None

    async def due_holds(self, limit: int) -> list[HoldRef]:
        rows = await self._db.fetch(_q("due_holds"), limit)
        return [HoldRef(row["user_id"], _uuid(row["id"])) for row in rows]

    async def ledgers(self) -> AsyncIterator[UserLedger]:
        async with (
            self._db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            after = ""
            while True:
                accounts = await conn.fetch(_q("audit_users"), after, AUDIT_BATCH_USERS)
                if not accounts:
                    return
                users = [row["user_id"] for row in accounts]
                holds: dict[str, list[Hold]] = {u: [] for u in users}
                for row in await conn.fetch(_q("audit_holds"), users):
                    holds[row["user_id"]].append(_hold(row, row["user_id"]))
                txs: dict[str, list[Transaction]] = {u: [] for u in users}
                for row in await conn.fetch(_q("audit_transactions"), users):
                    txs[row["user_id"]].append(_transaction(row, row["user_id"]))
                for row in accounts:
                    user_id = row["user_id"]
                    account = Account(user_id, row["balance"], row["held"])
                    yield UserLedger(user_id, account, holds[user_id], txs[user_id])
                after = users[-1]

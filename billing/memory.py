"""The ledger in memory: the same rules and contract as PostgreSQL, for tests and local runs.

Each ``execute`` runs without awaiting between its read and its write, so on one event loop
every operation is atomic, as a database transaction holding the account's row lock would be.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from billing.audit import UserLedger
from billing.ledger import Account, Hold, HoldRef, HoldStatus, State, Transaction, decide
from billing.requests import Request, hold_id_of
from billing.results import Result, result_of

__all__ = ["MemoryLedgerStore"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryLedgerStore:
    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._accounts: dict[str, Account] = {}
        self._holds: dict[uuid.UUID, Hold] = {}
        self._transactions: list[Transaction] = []
        self._by_key: dict[tuple[str, str], Transaction] = {}

    async def execute(self, request: Request) -> Result:
        user_id = request.user_id
        replay = self._by_key.get((user_id, request.key))
        hold_id = hold_id_of(request) or (replay.hold_id if replay else None)
        hold = self._holds.get(hold_id) if hold_id else None
        state = State(
            account=self._accounts.get(user_id, Account(user_id)),
            replay=replay,
            hold=hold if hold is not None and hold.user_id == user_id else None,
        )
        now = self._clock()
        decision = decide(request, state, now=now, new_hold_id=uuid.uuid4())
        written = None
        if decision.entry is not None:
            entry = decision.entry
            written = entry.recorded(id=len(self._transactions) + 1, created_at=now)
            self._transactions.append(written)
            self._by_key[(user_id, entry.key)] = written
            self._accounts[user_id] = decision.account
        if decision.hold_changed and decision.hold is not None:
            self._holds[decision.hold.id] = decision.hold
        return result_of(decision, request, written)

    async def account(self, user_id: str) -> Account:
        return self._accounts.get(user_id, Account(user_id))

    async def transactions(
        self, user_id: str, *, before_id: int | None = None, limit: int = 50
    ) -> list[Transaction]:
        rows = [
            t
            for t in reversed(self._transactions)
            if t.user_id == user_id and (before_id is None or t.id < before_id)
        ]
        return rows[:limit]

    async def hold(self, user_id: str, hold_id: uuid.UUID) -> Hold | None:
        hold = self._holds.get(hold_id)
        return hold if hold is not None and hold.user_id == user_id else None

    async def due_holds(self, limit: int) -> list[HoldRef]:
        now = self._clock()
        due = sorted(
            (h for h in self._holds.values() if h.status is HoldStatus.PENDING and h.due(now)),
            key=lambda h: h.expires_at,
        )
        return [HoldRef(h.user_id, h.id) for h in due[:limit]]

    async def ledgers(self) -> AsyncIterator[UserLedger]:
        users = sorted(
            set(self._accounts)
            | {h.user_id for h in self._holds.values()}
            | {t.user_id for t in self._transactions}
        )
        # Copy first: the snapshot must not change while the caller iterates.
        snapshot = [
            UserLedger(
                user_id,
                self._accounts.get(user_id),
                [h for h in self._holds.values() if h.user_id == user_id],
                [t for t in self._transactions if t.user_id == user_id],
            )
            for user_id in users
        ]
        for ledger in snapshot:
            yield ledger

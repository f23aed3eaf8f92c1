"""Random sequences of operations against a simple model of the ledger (an auditor).

The model below is written independently of ``billing.ledger``: plain dicts, the documented
rules, nothing shared. Hypothesis drives the store and the model with the same operations and
checks after every step that they agree on the outcome and the balances, and that the stored
ledger passes every invariant. It runs on the in-memory store and, with fewer examples, on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billing.ledger import Status
from billing.memory import MemoryLedgerStore
from billing.service import CreditService
from persistence.db import Database
from persistence.ledger_pg import PgLedgerStore
from tests.support import pg

T = TypeVar("T")

USERS = ("ann", "ben")
# Mostly the hold's owner; one draw in ten is another user, who must not see the hold.
STRANGER = st.integers(0, 9)
# Mostly fresh keys; one draw in five reuses an earlier key (a retry or a conflict).
KEYS = st.integers(0, 99)
TTLS = st.sampled_from([60, 120, 300])


@dataclass
class ModelHold:
    user: str
    amount: int
    expires_at: int
    status: str = "pending"
    captured: int = 0
    refunded: int = 0


@dataclass
class Model:
    """The ledger as a user would describe it: a balance, held credits, holds, used keys."""

    now: int = 0
    balance: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    holds: dict[uuid.UUID, ModelHold] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[object, ...]] = field(default_factory=dict)

    def available(self, user: str) -> int:
        return self.balance.get(user, 0) - self.held.get(user, 0)

    def replay(self, user: str, key: str, request: tuple[object, ...]) -> Status | None:
        seen = self.keys.get((user, key))
        if seen is None:
            return None
        return Status.ALREADY_EXISTS if seen == request else Status.EXISTS_WITH_DIFFERENT_REQUEST

    def record(
        self, user: str, key: str, request: tuple[object, ...], *, balance: int = 0, held: int = 0
    ) -> Status:
        self.keys[(user, key)] = request
        self.balance[user] = self.balance.get(user, 0) + balance
        self.held[user] = self.held.get(user, 0) + held
        return Status.CREATED

    def expire(self, hold_id: uuid.UUID) -> None:
        hold = self.holds[hold_id]
        hold.status = "expired"
        self.held[hold.user] -= hold.amount

    def open_hold(self, user: str, hold_id: uuid.UUID) -> ModelHold | Status:
        hold = self.holds.get(hold_id)
        if hold is None or hold.user != user:
            return Status.HOLD_NOT_FOUND
        if hold.status != "pending":
            return Status(f"already_{hold.status}")
        if self.now >= hold.expires_at:
            self.expire(hold_id)
            return Status.ALREADY_EXPIRED
        return hold


def retryable(method: Callable[..., T]) -> Callable[..., T]:
    """Remember the call, so that the ``retry`` rule can send the very same request again."""

    @functools.wraps(method)
    def wrapper(self: LedgerMachine, **kwargs: Any) -> T:
        self.last_call = (method, kwargs)
        return method(self, **kwargs)

    return wrapper


def run_async(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coro)


class LedgerMachine(RuleBasedStateMachine):
    """Subclassed per store: ``make`` returns a fresh service and a clock-advancing function."""

    loop: asyncio.AbstractEventLoop
    make: Callable[[], tuple[CreditService, Callable[[int, str], Coroutine[Any, Any, None]]]]
    examples: Iterator[int]

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.credits, self.advance_store = type(self).make()
        # Examples share a database: each one uses its own user names, and starts by
        # sweeping whatever an earlier example left due.
        self.run_id = next(type(self).examples)
        self.used_keys: list[str] = []
        self.last_call: tuple[Callable[..., object], dict[str, Any]] | None = None
        self.forced_key: str | None = None
        self.last_key = ""
        self.run(self.credits.expire_due(limit=1000))

    def user(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def holder(self, hold_id: uuid.UUID, stranger: int) -> str:
        owner = self.model.holds[hold_id].user
        if stranger < 9:
            return owner
        return next(u for u in map(self.user, USERS) if u != owner)

    def key(self, draw: int) -> str:
        if self.forced_key is not None:
            key, self.forced_key = self.forced_key, None
        elif draw < 80 or not self.used_keys:
            key = f"k{len(self.used_keys)}"
            self.used_keys.append(key)
        else:
            key = self.used_keys[draw % len(self.used_keys)]
        self.last_key = key
        return key

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return run_async(self.loop, coro)

    @rule(
        name=st.sampled_from(USERS),
        amount=st.integers(1, 500),
        key_draw=KEYS,
        purchase=st.booleans(),
    )
    @retryable
    def grant(self, name: str, amount: int, key_draw: int, purchase: bool) -> None:
        user, key = self.user(name), self.key(key_draw)
        request = ("credit", amount, purchase)
        expected = self.model.replay(user, key, request) or self.model.record(
            user, key, request, balance=amount
        )
        result = self.run(
            self.credits.grant(user, amount, key=key, reason="test", purchase=purchase)
        )
        assert result.status is expected

    @rule(name=st.sampled_from(USERS), amount=st.integers(-100, 100).filter(bool), key_draw=KEYS)
    @retryable
    def adjust(self, name: str, amount: int, key_draw: int) -> None:
        user, key = self.user(name), self.key(key_draw)
        request = ("adjust", amount)
        expected = self.model.replay(user, key, request)
        if expected is None:
            if self.model.available(user) + amount < 0:
                expected = Status.INSUFFICIENT_CREDITS
            else:
                expected = self.model.record(user, key, request, balance=amount)
        result = self.run(self.credits.adjust(user, amount, key=key, reason="test"))
        assert result.status is expected

    @rule(
        target=holds,
        name=st.sampled_from(USERS),
        amount=st.integers(1, 150),
        key_draw=KEYS,
        ttl_s=TTLS,
    )
    @retryable
    def place_hold(self, name: str, amount: int, key_draw: int, ttl_s: int) -> object:
        user, key = self.user(name), self.key(key_draw)
        request = ("hold", amount, ttl_s)
        expected = self.model.replay(user, key, request)
        if expected is None and self.model.available(user) < amount:
            expected = Status.INSUFFICIENT_CREDITS
        result = self.run(self.credits.place_hold(user, amount, key=key, ttl_s=ttl_s))
        if expected is None:
            expected = self.model.record(user, key, request, held=amount)
            assert result.hold is not None
            self.model.holds[result.hold.id] = ModelHold(user, amount, self.model.now + ttl_s)
        assert result.status is expected
        return result.hold.id if result.status is Status.CREATED and result.hold else multiple()

    @rule(
        hold_id=holds,
        stranger=STRANGER,
        amount=st.integers(0, 200),
        key_draw=KEYS,
        cap=st.booleans(),
    )
    @retryable
    def capture(
        self, hold_id: uuid.UUID, stranger: int, amount: int, key_draw: int, cap: bool
    ) -> None:
        user, key = self.holder(hold_id, stranger), self.key(key_draw)
        request = ("capture", hold_id, amount, cap)
        expected = self.model.replay(user, key, request) or self._capture(
            user, hold_id, amount, key, cap, request
        )
        result = self.run(self.credits.capture(user, hold_id, amount, key=key, cap_at_hold=cap))
        assert result.status is expected

    def _capture(
        self,
        user: str,
        hold_id: uuid.UUID,
        amount: int,
        key: str,
        cap: bool,
        request: tuple[object, ...],
    ) -> Status:
        hold = self.model.open_hold(user, hold_id)
        if isinstance(hold, Status):
            return hold
        charge = amount
        if amount > hold.amount and self.model.available(user) < amount - hold.amount:
            if not cap:
                return Status.INSUFFICIENT_CREDITS
            charge = hold.amount
        hold.status, hold.captured = "captured", charge
        return self.model.record(user, key, request, balance=-charge, held=-hold.amount)

    @rule(hold_id=holds, stranger=STRANGER, key_draw=KEYS)
    @retryable
    def release(self, hold_id: uuid.UUID, stranger: int, key_draw: int) -> None:
        user, key = self.holder(hold_id, stranger), self.key(key_draw)
        request = ("release", hold_id)
        expected = self.model.replay(user, key, request)
        if expected is None:
            hold = self.model.open_hold(user, hold_id)
            if isinstance(hold, Status):
                expected = hold
            else:
                hold.status = "released"
                expected = self.model.record(user, key, request, held=-hold.amount)
        result = self.run(self.credits.release(user, hold_id, key=key))
        assert result.status is expected

    @rule(hold_id=holds, stranger=STRANGER, amount=st.integers(1, 100), key_draw=KEYS)
    @retryable
    def refund(self, hold_id: uuid.UUID, stranger: int, amount: int, key_draw: int) -> None:
        user, key = self.holder(hold_id, stranger), self.key(key_draw)
        if amount <= 30:
            # Aim at the edge: one below, at, or one above what remains of the charge.
            remaining = self.model.holds[hold_id].captured - self.model.holds[hold_id].refunded
            amount = max(1, remaining + amount % 3 - 1)
        request = ("refund", hold_id, amount)
        expected = self.model.replay(user, key, request)
        hold = self.model.holds.get(hold_id)
        if expected is not None:
            pass
        elif hold is None or hold.user != user:
            expected = Status.HOLD_NOT_FOUND
        elif hold.status == "pending":
            expected = Status.NOT_CAPTURED
        elif hold.status != "captured":
            expected = Status(f"already_{hold.status}")
        elif hold.refunded + amount > hold.captured:
            expected = Status.EXCEEDS_CAPTURED
        else:
            hold.refunded += amount
            expected = self.model.record(user, key, request, balance=amount)
        result = self.run(self.credits.refund(user, hold_id, amount, key=key))
        assert result.status is expected

    @precondition(lambda self: self.last_call is not None)
    @rule()
    def retry(self) -> None:
        """The same request again, with the same key: it must change nothing."""
        assert self.last_call is not None
        method, kwargs = self.last_call
        self.forced_key = self.last_key
        method(self, **kwargs)

    @rule(seconds=st.sampled_from([30, 60, 90]))
    def advance(self, seconds: int) -> None:
        self.model.now += seconds
        self.run(self.advance_store(seconds, f"%-{self.run_id}"))

    @rule()
    def sweep(self) -> None:
        due = [
            hold_id
            for hold_id, hold in self.model.holds.items()
            if hold.status == "pending" and self.model.now >= hold.expires_at
        ]
        for hold_id in due:
            self.model.expire(hold_id)
        assert self.run(self.credits.expire_due(limit=1000)) == len(due)

    @invariant()
    def balances_match_the_model(self) -> None:
        for name in USERS:
            user = self.user(name)
            account = self.run(self.credits.balance(user))
            assert (account.balance, account.held) == (
                self.model.balance.get(user, 0),
                self.model.held.get(user, 0),
            )
            assert account.available >= 0

    @invariant()
    def stored_ledger_passes_every_check(self) -> None:
        report = self.run(self.credits.check())
        assert report.ok, report.violations


def test_memory_store_agrees_with_the_model() -> None:
    loop = asyncio.new_event_loop()

    class MemoryMachine(LedgerMachine):
        pass

    def make() -> tuple[CreditService, Callable[[int, str], Coroutine[Any, Any, None]]]:
        clock = [datetime(2026, 1, 1, tzinfo=UTC)]
        store = MemoryLedgerStore(lambda: clock[0])

        async def advance(seconds: int, users: str) -> None:
            clock[0] += timedelta(seconds=seconds)

        return CreditService(store), advance

    MemoryMachine.loop = loop
    MemoryMachine.make = staticmethod(make)
    MemoryMachine.examples = itertools.count()
    try:
        run_state_machine_as_test(
            MemoryMachine,
            settings=settings(max_examples=150, stateful_step_count=40, deadline=None),
        )
    finally:
        loop.close()


def test_postgres_store_agrees_with_the_model(pg_template: str) -> None:
    loop = asyncio.new_event_loop()
    name = pg.fresh_name()
    run_async(loop, pg.create_database(name, template=pg_template))
    db = run_async(loop, Database.connect(pg.dsn_for(name)))

    class PostgresMachine(LedgerMachine):
        pass

    async def advance(seconds: int, users: str) -> None:
        # The database clock cannot move; this example's pending holds move back instead.
        await db.pool.execute(
            """UPDATE credit_holds SET created_at = created_at - make_interval(secs => $1),
                                       expires_at = expires_at - make_interval(secs => $1)
               WHERE status = 'pending' AND user_id LIKE $2""",
            seconds,
            users,
        )

    def make() -> tuple[CreditService, Callable[[int, str], Coroutine[Any, Any, None]]]:
        return CreditService(PgLedgerStore(db)), advance

    PostgresMachine.loop = loop
    PostgresMachine.make = staticmethod(make)
    PostgresMachine.examples = itertools.count()
    try:
        run_state_machine_as_test(
            PostgresMachine,
            settings=settings(
                max_examples=25,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        run_async(loop, db.close())
        run_async(loop, pg.drop_database(name))
        loop.close()

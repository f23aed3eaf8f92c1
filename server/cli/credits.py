"""``flowai credits ...`` subcommands: grant, show, check, sweep, prices.

They connect to ``FLOWAI_DATABASE_URL``, or, when it is unset, to the embedded PostgreSQL in
the data directory (the one ``flowai serve`` starts), and apply pending migrations first, as
the server does at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from billing.errors import CreditError
from billing.ledger import Status
from billing.prices import PriceTable
from billing.service import CreditService
from billing.wording import count
from billing.wording import credits as n_credits
from server.cli.data_dir import Needs, needs_only
from server.cli.options import with_default

if TYPE_CHECKING:
    from server.settings import Settings

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_OPERATOR_GRANT = "granted by an operator"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``credits`` command group to the ``flowai`` parser."""
    credits = subparsers.add_parser("credits", help="credit balances and the ledger")
    sub = credits.add_subparsers(dest="credits_command", required=True)
    uses_database = needs_only(Needs(database=True))

    grant = sub.add_parser("grant", help="add credits to a user's balance")
    grant.add_argument("user", help="user id")
    grant.add_argument("amount", type=int, help="credits to add (1 credit = US$0.01)")
    grant.add_argument(
        "--reason",
        default=_OPERATOR_GRANT,
        help=with_default("recorded cause", repr(_OPERATOR_GRANT)),
    )
    grant.add_argument(
        "--purchase",
        action="store_true",
        help=with_default("record it as a purchase", "a free grant"),
    )
    grant.add_argument(
        "--key",
        help=with_default("idempotency key: repeat it to retry safely", "a new one"),
    )
    grant.set_defaults(run=_grant, needs=uses_database)

    show = sub.add_parser("show", help="print a user's balance and latest transactions")
    show.add_argument("user", help="user id")
    show.add_argument(
        "--limit", type=int, default=20, help=with_default("transactions to show", 20)
    )
    show.set_defaults(run=_show, needs=uses_database)

    check = sub.add_parser("check", help="scan the ledger and verify every invariant")
    check.set_defaults(run=_check, needs=uses_database)

    sweep = sub.add_parser("sweep", help="expire holds whose expiry time has passed")
    sweep.add_argument(
        "--limit", type=int, default=1000, help=with_default("holds per batch", 1000)
    )
    sweep.set_defaults(run=_sweep, needs=uses_database)

    prices = sub.add_parser(
        "prices", help="print the price table (markdown; margin: FLOWAI_CREDIT_MARGIN_PERCENT)"
    )
    prices.set_defaults(run=_prices)


def _margin_percent(settings: Settings) -> int:
    return settings.credit_margin_percent


def _with_credits(settings: Settings, work: Callable[[CreditService], Awaitable[T]]) -> T:
    from persistence.db import Database
    from persistence.embedded import start_embedded_postgres
    from persistence.ledger_pg import PgLedgerStore

    async def run() -> T:
        dsn = settings.database_url or start_embedded_postgres(settings.data_dir)
        db = await Database.connect(dsn, min_size=1, max_size=2)
        try:
            await db.migrate()
            return await work(CreditService(PgLedgerStore(db)))
        finally:
            await db.close()

    return asyncio.run(run())


def _grant(args: argparse.Namespace, settings: Settings) -> int:
    key = args.key or f"cli:{uuid.uuid4()}"

    async def work(credits: CreditService) -> int:
        result = await credits.grant(
            args.user, args.amount, key=key, reason=args.reason, purchase=args.purchase
        )
        account = result.account
        if not result.ok:
            print(
                f"error: {result.status}: key {key!r} was used for another request", file=sys.stderr
            )
            return EXIT_FAILED
        verb = "granted" if result.status is Status.CREATED else "already granted"
        tx_id = result.transaction.id if result.transaction else "?"
        print(
            f"{verb} {n_credits(args.amount)} to {args.user} (transaction {tx_id}, key {key}): "
            f"balance {account.balance}, held {account.held}, available {account.available}"
        )
        return EXIT_OK

    try:
        return _with_credits(settings, work)
    except CreditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(credits: CreditService) -> int:
        account = await credits.balance(args.user)
        txs = await credits.transactions(args.user, limit=max(1, args.limit))
        print(f"user {args.user}")
        print(f"balance {account.balance}  held {account.held}  available {account.available}")
        if not txs:
            print("no transactions")
            return EXIT_OK
        print("latest transactions (newest first):")
        print(
            f"{'id':>8}  {'time (UTC)':19}  {'kind':10}  {'amount':>8}  {'balance':>8}  "
            f"{'held':>8}  cause"
        )
        for tx in txs:
            cause = tx.reason or f"hold {tx.hold_id}" + (f" job {tx.job_id}" if tx.job_id else "")
            print(
                f"{tx.id:>8}  {tx.created_at:%Y-%m-%d %H:%M:%S}  {tx.kind.value:10}  "
                f"{tx.amount:>8}  {tx.balance_after:>8}  {tx.held_after:>8}  "
                f"{cause}"
            )
        return EXIT_OK

    return _with_credits(settings, work)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    async def work(credits: CreditService) -> int:
        report = await credits.check()
        scanned = ", ".join(
            (
                count(report.users, "user"),
                count(report.holds, "hold"),
                count(report.transactions, "transaction"),
            )
        )
        if report.ok:
            print(f"ok: {scanned}; every invariant holds")
            return EXIT_OK
        for violation in report.violations:
            print(f"violation: {violation}")
        failed = count(len(report.violations), "violation")
        print(f"FAILED: {failed} in {scanned}", file=sys.stderr)
        return EXIT_FAILED

    return _with_credits(settings, work)


def _sweep(args: argparse.Namespace, settings: Settings) -> int:
    async def work(credits: CreditService) -> int:
        total = 0
        while expired := await credits.expire_due(limit=args.limit):
            total += expired
        print(f"expired {count(total, 'hold')}")
        return EXIT_OK

    return _with_credits(settings, work)


def _prices(args: argparse.Namespace, settings: Settings) -> int:
    print(PriceTable(margin_percent=_margin_percent(settings)).markdown(), end="")
    return EXIT_OK

"""``flowai``: serve, mint local tokens."""

from __future__ import annotations

import argparse
import signal
import sys

from server.settings import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    import uvicorn

    from server.app import HTTP_PROTOCOL, WEBSOCKET_PROTOCOL
    from server.logging_setup import configure_logging

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if workers > 1 and not settings.redis_url:
        print(
            "flowai serve: --workers > 1 needs FLOWAI_REDIS_URL, so that the worker processes "
            "can share rooms",
            file=sys.stderr,
        )
        return 2
    # Every worker process reads its settings from the environment: pin what the parent
    # resolved (the embedded database is started once, here).
    os.environ["FLOWAI_DATABASE_URL"] = database_url(settings)
    os.environ["FLOWAI_HOST"], os.environ["FLOWAI_PORT"] = host, str(port)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; with the
    # default handler the process would die there and skip its exit handlers, which stop
    # the embedded PostgreSQL. Turn that second delivery into a normal exit.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "server.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        http=HTTP_PROTOCOL,
        ws=WEBSOCKET_PROTOCOL,
        backlog=settings.backlog,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one in the data directory."""
    if settings.database_url:
        return settings.database_url
    from persistence.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from persistence.db import Database

    async def run() -> list[int]:
        db = await Database.connect(database_url(settings), min_size=1, max_size=1)
        try:
            applied = await db.migrate()
            from persistence.jobs_pg import ensure_queue_schema

            await ensure_queue_schema(db)  # The job queue's own schema, after ours.
            return applied
        finally:
            await db.close()

    applied = asyncio.run(run())
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def _users(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from persistence.db import Database
    from persistence.users import RevokedUsers

    async def run() -> None:
        db = await Database.connect(database_url(settings), min_size=1, max_size=1)
        try:
            await db.migrate()
            users = RevokedUsers(db)
            if args.action == "revoke":
                await users.revoke(args.user, args.reason)
            else:
                await users.restore(args.user)
        finally:
            await db.close()

    asyncio.run(run())
    done = "revoked: tokens refused" if args.action == "revoke" else "restored"
    print(f"{args.user}: {done}")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from server.auth import mint_token

    token = mint_token(
        settings.resolved_jwt_secret(), args.user, ttl_s=args.ttl, audience=settings.jwt_audience
    )
    print(token)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowai", description="FlowAI collaboration backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (embedded defaults when unconfigured)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (needs Redis if > 1)"
    )
    serve.set_defaults(run=_serve)
    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)
    users = sub.add_parser("users", help="refuse (or accept again) a user's tokens")
    users.add_argument("action", choices=["revoke", "restore"])
    users.add_argument("user", help="user id (the tokens' sub)")
    users.add_argument("--reason", default=None)
    users.set_defaults(run=_users)
    token = sub.add_parser("token", help="print a signed access token for local use")
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(run=_token)
    from server.cli import credits as cli_credits

    cli_credits.register(sub)
    from server.cli import worker as cli_worker

    cli_worker.register(sub)
    args = parser.parse_args(argv)
    settings = Settings()
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())

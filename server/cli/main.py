"""``flowai``: serve, migrate, revoke users, mint local tokens (and ``credits``, ``worker``)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from server.cli.data_dir import (
    DataDirError,
    Needs,
    check_can_create,
    locate,
    needs_only,
    require,
)
from server.cli.options import token_ttl, with_default, with_setting
from server.settings import Settings

log = logging.getLogger("server.cli")

EXIT_CONFIG = 2


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
        return EXIT_CONFIG
    log.info(
        "data directory %s",
        settings.data_dir,
        extra={"data_dir": str(settings.data_dir), "embedded_database": not settings.database_url},
    )
    settings.resolved_jwt_secret()  # created here once, before processes share it
    # Every worker process reads its settings from the environment: pin what the parent
    # resolved (the embedded database is started once, here).
    os.environ.update(process_environment(settings, database_url(settings), host, port))
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


def process_environment(settings: Settings, dsn: str, host: str, port: int) -> dict[str, str]:
    """What ``flowai serve`` resolved, for the server processes to read as their settings.

    The embedded database's URL is passed as ``FLOWAI_DATABASE_URL``, so a process can no
    longer tell it from a configured one: whether it runs job workers is decided here."""
    from server.composition.ai import workers_in_process

    return {
        "FLOWAI_DATABASE_URL": dsn,
        "FLOWAI_JOBS_IN_PROCESS": "true" if workers_in_process(settings) else "false",
        "FLOWAI_DATA_DIR": str(settings.data_dir),
        "FLOWAI_HOST": host,
        "FLOWAI_PORT": str(port),
    }


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SIGTERM is how supervisors (and `make serve`) ask for a stop: having stopped as asked,
    # exit 0, not 128 + 15.
    raise SystemExit(0)


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one in the data directory."""
    if settings.database_url:
        return settings.database_url
    from persistence.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from persistence.db import Database

    print(f"data directory: {settings.data_dir}", file=sys.stderr)
    settings.resolved_jwt_secret()  # what `flowai token` signs with, as `serve` would create

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowai",
        description="FlowAI collaboration backend",
        epilog="Data (the embedded database, the local token secret, media) lives in "
        "FLOWAI_DATA_DIR, else $XDG_DATA_HOME/flowai, else ~/.local/share/flowai.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (embedded defaults when unconfigured)")
    serve.add_argument("--host", default=None, help=with_setting("listen address", "host"))
    serve.add_argument("--port", type=int, default=None, help=with_setting("listen port", "port"))
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help=with_default("processes sharing the port (needs FLOWAI_REDIS_URL if > 1)", 1),
    )
    serve.set_defaults(run=_serve, creates_data=True)
    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate, creates_data=True)
    users = sub.add_parser("users", help="refuse (or accept again) a user's tokens")
    users.add_argument("action", choices=["revoke", "restore"])
    users.add_argument("user", help="user id (the tokens' sub)")
    users.add_argument("--reason", default=None, help=with_default("recorded cause", "none"))
    users.set_defaults(run=_users, needs=needs_only(Needs(database=True)))
    token = sub.add_parser("token", help="print a signed access token for local use")
    token.add_argument("--user", required=True, help="user id (the token's sub; required)")
    token.add_argument(
        "--ttl",
        type=token_ttl,
        default=3600,
        help=with_default("lifetime in seconds, 1 to 2592000 (30 days)", 3600),
    )
    token.set_defaults(run=_token, needs=needs_only(Needs(jwt_secret=True)))
    from server.cli import credits as cli_credits

    cli_credits.register(sub)
    from server.cli import worker as cli_worker

    cli_worker.register(sub)
    return parser


def _check_data_dir(args: argparse.Namespace, settings: Settings) -> None:
    if refuse := getattr(args, "refuse", None):  # a reason to stop that comes first
        if reason := refuse(settings):
            raise DataDirError(reason)
    data = locate(settings, Path.cwd())
    if getattr(args, "creates_data", False):
        check_can_create(data)
    elif needs_for := getattr(args, "needs", None):
        require(data, settings, needs_for(settings))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        _check_data_dir(args, settings)
    except DataDirError as exc:
        command = " ".join(filter(None, (args.command, getattr(args, "credits_command", None))))
        print(f"flowai {command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())

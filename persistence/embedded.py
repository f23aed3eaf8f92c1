"""An embedded PostgreSQL (the ``pgserver`` wheel) for running with no database configured."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

__all__ = ["start_embedded_postgres"]

log = logging.getLogger(__name__)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in ``data_dir/pg``; returns its DSN.

    pgserver keeps the server running while any process uses it and reuses the data
    directory on the next start, so a second ``flowai serve`` sees the same data.
    """
    pg_dir = (data_dir / "pg").resolve()
    created = not (pg_dir / "PG_VERSION").is_file()
    pg_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    server = _get_server(pg_dir)
    uri: str = server.get_uri()
    log.info(
        "embedded PostgreSQL %s",
        "created" if created else "started",
        extra={"pg_dir": str(pg_dir), "seconds": round(time.monotonic() - started, 2)},
    )
    return uri


def _get_server(pg_dir: Path) -> PostgresServer:
    # pgserver logs every command it runs with its whole output (initdb: ~30 lines) as one
    # INFO record; our own line above says what happened. Its warnings and errors (with the
    # output of a failed command) still come through.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # pgserver keeps its lock file in the user's runtime directory; without
        # XDG_RUNTIME_DIR (containers, su, cron) platformdirs falls back to a private
        # directory it creates and checks (/run/user/<uid> or /tmp/runtime-<uid>) and warns
        # on every start. That fallback is right here: only this one cause is silenced
        # (a runtime directory with wrong owner or mode is still reported).
        # (platformdirs' RuntimeDirWarning is a UserWarning; older releases do not warn.)
        warnings.filterwarnings(
            "ignore", message="XDG_RUNTIME_DIR is not set", category=UserWarning
        )
        from pgserver.postgres_server import get_server

    server: PostgresServer = get_server(pg_dir, cleanup_mode="stop")
    return server

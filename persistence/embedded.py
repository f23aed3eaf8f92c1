"""An embedded PostgreSQL (the ``pgserver`` wheel) for running with no database configured."""

from __future__ import annotations

from pathlib import Path


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in ``data_dir/pg``; returns its DSN.

    pgserver keeps the server running while any process uses it and reuses the data
    directory on the next start, so a second ``flowai serve`` sees the same data.
    """
    from pgserver.postgres_server import get_server

    pg_dir = (data_dir / "pg").resolve()
    pg_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(pg_dir, cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri

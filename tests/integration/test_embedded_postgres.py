"""With no database configured, `flowai serve` runs on an embedded PostgreSQL and keeps it."""

from __future__ import annotations

from pathlib import Path

import httpx

from server.auth import mint_token
from tests.support.process import ServerProcess
from tests.support.server import TEST_SECRET


async def test_embedded_database_is_started_and_reused(tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'alice')}"}
    first = ServerProcess("", tmp_path)
    del first.env["FLOWAI_DATABASE_URL"]
    await first.start(timeout=90)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{first.port}", headers=headers
        ) as http:
            created = (await http.post("/api/projects", json={"title": "kept"})).json()
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await first.stop()
    assert (tmp_path / "pg").is_dir()

    second = ServerProcess("", tmp_path, port=first.port)
    del second.env["FLOWAI_DATABASE_URL"]
    await second.start(timeout=90)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{second.port}", headers=headers
        ) as http:
            listed = (await http.get("/api/projects")).json()
        assert [p["id"] for p in listed] == [created["id"]]
    finally:
        await second.stop()

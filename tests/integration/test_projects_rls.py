"""Projects REST, the CLI, and row-level security under each caller's identity."""

from __future__ import annotations

import uuid

import pytest

from persistence.db import Database
from server.cli.main import main
from tests.support.server import RunningServer


async def test_projects_rest(server: RunningServer) -> None:
    async with server.client("alice") as http:
        r = await http.post("/api/projects", json={"title": "Trailer", "fps": 25})
        assert r.status_code == 201
        pid = r.json()["id"]
        r = await http.get(f"/api/projects/{pid}")
        body = r.json()
        assert body["role"] == "owner"
        assert body["timeline"]["project"]["title"] == "Trailer"
        assert body["timeline"]["project"]["fps"] == 25
        assert [p["id"] for p in (await http.get("/api/projects")).json()] == [pid]
        r = await http.post("/api/projects", json={"title": ""})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = await http.post(
            f"/api/projects/{pid}/members", json={"user_id": "bob", "role": "owner"}
        )
        assert r.status_code == 400
        r = await http.get(f"/api/projects/{uuid.uuid4()}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "project_not_found"
    async with server.client("bob") as http:
        assert (await http.get("/api/projects")).json() == []
        r = await http.get(f"/api/projects/{pid}")
        assert r.status_code == 404
        r = await http.post(
            f"/api/projects/{pid}/members", json={"user_id": "bob", "role": "editor"}
        )
        assert r.status_code == 404
    await server.add_member("alice", pid, "bob", "editor")
    async with server.client("bob") as http:
        assert (await http.get(f"/api/projects/{pid}")).json()["role"] == "editor"
        r = await http.post(
            f"/api/projects/{pid}/members", json={"user_id": "eve", "role": "viewer"}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_rest_requires_a_valid_token(server: RunningServer) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get("/api/projects")
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_missing"
        r = await http.get("/api/projects", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        r = await http.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"
        assert (await http.get("/openapi.json")).status_code == 200


async def test_rls_isolates_users_even_in_direct_queries(server: RunningServer) -> None:
    pid = uuid.UUID(await server.create_project("alice", "Secret"))
    async with server.client("alice") as http:
        await http.post(f"/api/projects/{pid}/versions", json={"label": "v"})
    db: Database = server.services.db
    await db.pool.execute(
        "INSERT INTO video_tracks (project_id, track_id, kind, name, order_key) "
        "VALUES ($1, 't', 'video', 'V', 'a')",
        pid,
    )
    await db.pool.execute(
        "INSERT INTO video_clips (project_id, clip_id, track_id, kind, start_ms, duration_ms) "
        "VALUES ($1, 'c', 't', 'video', 0, 10)",
        pid,
    )
    tables = ["video_projects", "project_members", "doc_versions", "video_tracks", "video_clips"]
    for table in tables:
        async with db.as_user("alice") as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") >= 1, table
        async with db.as_user("bob") as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    # The app role cannot write, and cannot read the raw document log at all.
    import asyncpg

    async with db.as_user("bob") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM doc_updates")


async def test_cli_migrate_is_idempotent(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLOWAI_DATABASE_URL", database_url)
    import asyncio

    await asyncio.to_thread(main, ["migrate"])
    assert "up to date" in capsys.readouterr().out

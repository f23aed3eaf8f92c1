"""Project management over REST: PATCH into the live document, the row as its projection
(title, size, updated_at), the list order, soft delete with open sockets, the member list."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crdt.timeline import read_timeline, set_project_fields
from server.close_codes import CloseCode
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server
from tests.support.yclient import YClient


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[RunningServer]:
    # Edits settle quickly here, so the projection follows within the test's polling.
    settings = make_settings(tmp_path, database_url=database_url, settle_ms=20, settle_ms_max=100)
    async with run_server(settings) as running:
        yield running


async def _poll(read: Any, predicate: Any, *, timeout_s: float = 10) -> Any:
    """``await read()`` until ``predicate`` holds of it (bounded in time); returns the value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await read()
        if predicate(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in time; last value: {value!r}")
        await asyncio.sleep(0.02)


async def _connected(server: RunningServer, pid: str, user: str) -> YClient:
    client = await YClient(server.ws_url(pid, user)).connect()
    await client.wait_synced()
    return client


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]


async def test_patch_writes_the_live_document_and_every_read_agrees(
    server: RunningServer,
) -> None:
    pid = await server.create_project("alice", "Draft")
    watcher = await _connected(server, pid, "alice")
    try:
        async with server.client("alice") as http:
            r = await http.patch(f"/api/projects/{pid}", json={"title": "Final cut", "fps": 25})
            assert r.status_code == 200, r.text
            assert r.json()["title"] == "Final cut" and r.json()["fps"] == 25
            assert r.json()["width"] == 1920 and r.json()["height"] == 1080
            # Collaborators see it live: it is in the document.
            await _poll(
                lambda: asyncio.sleep(0, read_timeline(watcher.doc).project),
                lambda p: p.title == "Final cut" and p.fps == 25,
            )
            listed = (await http.get("/api/projects")).json()
            one = (await http.get(f"/api/projects/{pid}")).json()
        assert [p["title"] for p in listed] == ["Final cut"]
        assert one["title"] == one["timeline"]["project"]["title"] == "Final cut"
        assert one["fps"] == one["timeline"]["project"]["fps"] == 25
    finally:
        await watcher.close()


async def test_an_edit_over_the_websocket_reaches_the_row(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Before")
    editor = await _connected(server, pid, "alice")
    try:
        await editor.edit(lambda doc: set_project_fields(doc, title="After", width=1280))
        async with server.client("alice") as http:

            async def listed() -> Any:
                return (await http.get("/api/projects")).json()[0]

            row = await _poll(listed, lambda p: p["title"] == "After")
            one = (await http.get(f"/api/projects/{pid}")).json()
        assert row["width"] == one["width"] == 1280
        assert one["title"] == "After"
        # A title the row cannot hold: too long is cut, empty keeps the row's.
        await editor.edit(lambda doc: set_project_fields(doc, title="x" * 300))
        async with server.client("alice") as http:
            row = await _poll(listed, lambda p: p["title"].startswith("x"))
            assert row["title"] == "x" * 200
            await editor.edit(lambda doc: set_project_fields(doc, title="", height=720))
            row = await _poll(listed, lambda p: p["height"] == 720)
            assert row["title"] == "x" * 200
    finally:
        await editor.close()


async def test_the_list_is_most_recently_edited_first(server: RunningServer) -> None:
    first = await server.create_project("alice", "First")
    second = await server.create_project("alice", "Second")
    async with server.client("alice") as http:

        async def order() -> list[str]:
            return [p["id"] for p in (await http.get("/api/projects")).json()]

        assert await order() == [second, first]
        version = await http.post(f"/api/projects/{first}/versions", json={"label": "v1"})
        assert version.status_code == 201, version.text
        # An edit over the websocket moves a project to the top once it is stored.
        editor = await _connected(server, first, "alice")
        try:
            await editor.edit(lambda doc: set_project_fields(doc, fps=50))
            await _poll(order, lambda ids: ids == [first, second])
        finally:
            await editor.close()
        r = await http.patch(f"/api/projects/{second}", json={"height": 720})
        assert r.status_code == 200
        assert await order() == [second, first]
        # A restore is an edit too.
        restored = await http.post(
            f"/api/projects/{first}/versions/{version.json()['version']}/restore"
        )
        assert restored.status_code == 200, restored.text
        await _poll(order, lambda ids: ids == [first, second])
        one = (await http.get(f"/api/projects/{first}")).json()
        assert one["fps"] == one["timeline"]["project"]["fps"] == 30


async def test_patch_checks_roles_and_input(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Roles")
    await server.add_member("alice", pid, "vera", "viewer")
    await server.add_member("alice", pid, "ed", "editor")
    async with server.client("ed") as http:
        r = await http.patch(f"/api/projects/{pid}", json={"title": "By an editor"})
        assert r.status_code == 200 and r.json()["role"] == "editor"
        _error(await http.patch(f"/api/projects/{pid}", json={}), 422, "invalid_request")
        _error(
            await http.patch(f"/api/projects/{pid}", json={"title": None}), 422, "invalid_request"
        )
        _error(await http.patch(f"/api/projects/{pid}", json={"title": ""}), 422, "invalid_request")
        _error(await http.patch(f"/api/projects/{pid}", json={"fps": 0}), 422, "invalid_request")
    async with server.client("vera") as http:
        _error(await http.patch(f"/api/projects/{pid}", json={"title": "No"}), 403, "forbidden")
    async with server.client("mallory") as http:
        r = await http.patch(f"/api/projects/{pid}", json={"title": "No"})
        _error(r, 404, "project_not_found")
        _error(
            await http.patch(f"/api/projects/{uuid.uuid4()}", json={"title": "No"}),
            404,
            "project_not_found",
        )
    async with httpx.AsyncClient(base_url=server.http) as anonymous:
        _error(
            await anonymous.patch(f"/api/projects/{pid}", json={"title": "No"}),
            401,
            "token_missing",
        )
    async with server.client("alice") as http:
        assert (await http.get(f"/api/projects/{pid}")).json()["title"] == "By an editor"


async def test_members_are_listed_to_every_member(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Team")
    await server.add_member("alice", pid, "vera", "viewer")
    await server.add_member("alice", pid, "ed", "editor")
    async with server.client("vera") as http:
        r = await http.get(f"/api/projects/{pid}/members")
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"user_id": "alice", "role": "owner"},
        {"user_id": "vera", "role": "viewer"},
        {"user_id": "ed", "role": "editor"},
    ]
    async with server.client("mallory") as http:
        _error(await http.get(f"/api/projects/{pid}/members"), 404, "project_not_found")


async def test_delete_closes_sockets_and_hides_the_project(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Doomed")
    kept = await server.create_project("alice", "Kept")
    await server.add_member("alice", pid, "bob", "editor")
    async with server.client("alice") as http:
        assert (
            await http.post(f"/api/projects/{pid}/versions", json={"label": "v"})
        ).status_code == 201
    async with server.client("bob") as http:
        _error(await http.delete(f"/api/projects/{pid}"), 403, "forbidden")
    owner_socket = await _connected(server, pid, "alice")
    editor_socket = await _connected(server, pid, "bob")
    try:
        async with server.client("alice") as http:
            r = await http.delete(f"/api/projects/{pid}")
            assert r.status_code == 204, r.text
            assert await owner_socket.wait_closed() == CloseCode.NO_SUCH_PROJECT
            assert await editor_socket.wait_closed() == CloseCode.NO_SUCH_PROJECT
            assert owner_socket.close_reason == "project deleted"
            # Gone from every read, and from the websocket.
            assert [p["id"] for p in (await http.get("/api/projects")).json()] == [kept]
            for path in ("", "/members", "/versions"):
                _error(await http.get(f"/api/projects/{pid}{path}"), 404, "project_not_found")
            _error(
                await http.patch(f"/api/projects/{pid}", json={"title": "x"}),
                404,
                "project_not_found",
            )
            _error(await http.delete(f"/api/projects/{pid}"), 404, "project_not_found")
        async with server.client("bob") as http:
            assert (await http.get("/api/projects")).json() == []
        for user in ("alice", "bob"):
            late = await YClient(server.ws_url(pid, user)).connect()
            assert await late.wait_closed() == CloseCode.NO_SUCH_PROJECT
    finally:
        await owner_socket.close()
        await editor_socket.close()
    # Soft: the document, its versions and who the members were are kept.
    db, project = server.services.db, uuid.UUID(pid)
    row = await db.fetchrow(
        "SELECT deleted_at, deleted_members FROM video_projects WHERE id = $1", project
    )
    assert row is not None and row["deleted_at"] is not None
    members = json.loads(row["deleted_members"])
    assert sorted((m["user_id"], m["role"]) for m in members) == [
        ("alice", "owner"),
        ("bob", "editor"),
    ]
    for table in ("doc_versions", "doc_states"):
        count = await db.fetchval(f"SELECT count(*) FROM {table} WHERE project_id = $1", project)
        assert count >= 1, table

"""Tokens of revoked (deleted) users are refused, and their open connections close."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.cli.main import main
from server.close_codes import CloseCode
from tests.conftest import make_settings
from tests.support.server import run_server
from tests.support.yclient import YClient


async def test_revoked_user_is_refused_everywhere(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, revoked_users_refresh_s=0.2)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        await server.add_member("alice", pid, "bob", "editor")
        bob = await YClient(server.ws_url(pid, "bob")).connect()
        await bob.wait_synced()
        # Revoked from another process (the CLI), as an operator would.
        monkeypatch.setenv("FLOWAI_DATABASE_URL", database_url)
        await asyncio.to_thread(main, ["users", "revoke", "bob", "--reason", "account deleted"])
        # The open connection closes within one refresh interval...
        assert await bob.wait_closed() == CloseCode.NOT_AUTHENTICATED
        # ...and the same, still unexpired, token is refused on REST and websocket.
        async with server.client("bob") as http:
            r = await http.get("/api/projects")
            assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
        again = await YClient(server.ws_url(pid, "bob")).connect(handshake=False)
        assert await again.wait_closed() == CloseCode.NOT_AUTHENTICATED
        await asyncio.to_thread(main, ["users", "restore", "bob"])
        # Accepted again from the next refresh on.
        async with server.client("bob") as http:
            for _ in range(100):
                if (await http.get("/api/projects")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await http.get("/api/projects")).status_code == 200

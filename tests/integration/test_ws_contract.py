"""Who may open a websocket: allowed origins, one unambiguous token, a bounded token size."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
import websockets

from server.close_codes import CloseCode
from tests.conftest import make_settings
from tests.support.server import TEST_SECRET, RunningServer, run_server
from tests.support.yclient import YClient


async def _refused_status(url: str, **headers: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=headers, open_timeout=10)
    return refused.value.response.status_code


async def _opens(url: str, **headers: str) -> None:
    client = await YClient(url, headers=headers or None).connect()
    await client.wait_synced()
    await client.close()


async def test_origins_outside_the_allow_list_are_refused_403(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        ws_origins="https://app.example.com, http://localhost:3000/",
    )
    assert settings.ws_origins == {"https://app.example.com", "http://localhost:3000"}
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        url = server.ws_url(pid, "alice")
        assert await _refused_status(url, Origin="https://evil.example") == 403
        assert await _refused_status(url, Origin="null") == 403
        await _opens(url, Origin="https://app.example.com")
        await _opens(url, Origin="http://localhost:3000")
        await _opens(url)  # no Origin: not a browser
        await _opens(url, Origin=f"http://127.0.0.1:{server.port}")  # this server's own page


async def test_without_an_allow_list_any_origin_opens(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await _opens(server.ws_url(pid, "alice"), Origin="https://anywhere.example")


async def test_two_different_tokens_are_refused_4401(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.add_member("alice", pid, "bob", "editor")
    url = server.ws_url(pid, "alice")
    client = await YClient(url, headers={"Authorization": f"Bearer {server.token('bob')}"}).connect(
        handshake=False
    )
    assert await client.wait_closed() == CloseCode.NOT_AUTHENTICATED
    assert client.close_reason == "token_ambiguous"
    # The same token in both places is not ambiguous.
    token = url.partition("token=")[2]
    await _opens(url, Authorization=f"Bearer {token}")


async def test_overlong_tokens_are_refused_on_both_doors(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, jwt_bytes_max=1024)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        claims = {"sub": "alice", "aud": "authenticated", "exp": 4_000_000_000}
        big = jwt.encode({**claims, "pad": "x" * 1200}, TEST_SECRET, algorithm="HS256")
        fits = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
        base = f"ws://127.0.0.1:{server.port}/ws/{pid}?token="
        client = await YClient(base + big).connect(handshake=False)
        assert await client.wait_closed() == CloseCode.NOT_AUTHENTICATED
        assert client.close_reason == "token_too_long"
        await _opens(base + fits)
        async with server.client("alice") as http:
            http.headers["Authorization"] = f"Bearer {big}"
            refused = await http.get("/api/projects")
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "token_too_long"
            http.headers["Authorization"] = f"Bearer {fits}"
            assert (await http.get("/api/projects")).status_code == 200

"""Media links returned by the API are absolute, and play on another origin: CORS and Range
requests (206 Partial Content) on the local media store's links, so a <video> can seek."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.ai.helpers import ai_settings, upload
from tests.support.fake_providers import FakeProviders
from tests.support.server import RunningServer, run_server

APP_ORIGIN = "https://editor.example.com"
PUBLIC_URL = "https://api.example.com/flowai"


@pytest.fixture
async def media_server(
    tmp_path: Path, database_url: str, fake: FakeProviders
) -> AsyncIterator[RunningServer]:
    settings = ai_settings(tmp_path, database_url, fake, cors_origins=APP_ORIGIN)
    async with run_server(settings) as running:
        yield running


async def _asset_link(server: RunningServer, clip: Path, **headers: str) -> tuple[str, str]:
    pid = await server.create_project("alice")
    async with server.client("alice") as http:
        asset = await upload(http, pid, clip)
        r = await http.get(f"/api/projects/{pid}/assets/{asset['id']}/url", headers=headers)
    assert r.status_code == 200, r.text
    return pid, r.json()["url"]


async def test_links_are_absolute_on_the_request_origin(
    media_server: RunningServer, test_clip: Path
) -> None:
    _, url = await _asset_link(media_server, test_clip)
    assert url.startswith(f"{media_server.http}/media/projects/")
    # Behind a proxy (uvicorn trusts X-Forwarded-Proto from 127.0.0.1): its scheme and host.
    _, proxied = await _asset_link(
        media_server, test_clip, **{"X-Forwarded-Proto": "https", "Host": "cdn.example.org"}
    )
    assert proxied.startswith("https://cdn.example.org/media/projects/")


async def test_range_requests_seek_cross_origin(
    media_server: RunningServer, test_clip: Path
) -> None:
    _, url = await _asset_link(media_server, test_clip)
    data = test_clip.read_bytes()
    size = len(data)
    async with httpx.AsyncClient() as http:
        whole = await http.get(url, headers={"Origin": APP_ORIGIN})
        head = await http.get(url, headers={"Origin": APP_ORIGIN, "Range": "bytes=0-99"})
        tail = await http.get(url, headers={"Range": "bytes=-10"})
        middle = await http.get(url, headers={"Range": f"bytes={size // 2}-"})
        beyond = await http.get(url, headers={"Range": f"bytes={size + 10}-"})
        preflight = await http.options(
            url,
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["access-control-allow-origin"] == APP_ORIGIN
    assert head.status_code == 206
    assert head.content == data[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{size}"
    assert head.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {h.strip().lower() for h in head.headers["access-control-expose-headers"].split(",")}
    assert {"content-range", "accept-ranges", "content-length"} <= exposed
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert middle.status_code == 206 and middle.content == data[size // 2 :]
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert preflight.status_code == 200
    assert "range" in preflight.headers["access-control-allow-headers"].lower()


async def test_links_use_the_configured_public_url(
    tmp_path: Path, database_url: str, fake: FakeProviders, test_clip: Path
) -> None:
    settings = ai_settings(tmp_path, database_url, fake, public_url=PUBLIC_URL)
    async with run_server(settings) as server:
        _, url = await _asset_link(server, test_clip)
        assert url.startswith(f"{PUBLIC_URL}/media/projects/")
        # The public URL names where clients reach this server: the same path works here.
        local = f"{server.http}{urlsplit(url).path.removeprefix('/flowai')}?{urlsplit(url).query}"
        async with httpx.AsyncClient() as http:
            r = await http.get(local, headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and r.content == test_clip.read_bytes()[:10]

"""The inspector's committed assets: served by the app, and what ``inspector/`` builds."""

from __future__ import annotations

import asyncio
import re

import httpx

from server.http.inspector import STATIC_DIR
from tests.browser.browser_run import INSPECTOR_DIR, NODE, require_node_modules
from tests.support.server import RunningServer


async def test_the_page_and_its_assets_are_served_same_origin_only(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        page = await http.get("/")
        script = await http.get("/inspector/inspector.js")
        style = await http.get("/inspector/inspector.css")
        missing = await http.get("/inspector/nothing.js")
        api = await http.get("/api/projects")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/inspector/inspector.js">' in page.text
    assert "flowai token --user ID" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.content == (STATIC_DIR / "inspector.js").read_bytes()
    assert style.status_code == 200 and style.headers["cache-control"] == "no-cache"
    assert missing.status_code == 404
    # The page does not shadow the API: REST still answers with its own errors.
    assert api.status_code == 401 and api.json()["error"]["code"] == "token_missing"


async def _node(*args: str) -> tuple[int, str]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        *args,
        cwd=INSPECTOR_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_committed_assets_are_what_the_sources_build() -> None:
    require_node_modules()
    code, out = await _node("build.mjs", "--check")
    assert code == 0, out


async def test_page_logic_unit_tests_pass() -> None:
    """The page's pure modules (layout, messages, presence, tokens) under node --test."""
    require_node_modules()
    code, out = await _node("build.mjs", "--tests")
    assert code == 0, out
    code, out = await _node("--test", ".test-build/")
    assert code == 0, out
    assert re.search(r"^# pass [1-9]", out, re.M) and "# fail 0" in out, out

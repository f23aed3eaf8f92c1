"""What every HTTP request meets before a route: CORS, the request id, the body limit.

Real requests against the real app on uvicorn: browser preflights (OPTIONS with Origin and
Access-Control-Request-*), cross-origin requests, and bodies over the limit sent with a
Content-Length and chunked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server

APP_ORIGIN = "https://app.example.com"
OTHER_APP_ORIGIN = "http://localhost:5173"
BODY_BYTES_MAX = 4096


@pytest.fixture
async def server(tmp_path: Path, database_url: str) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        cors_origins=f"{APP_ORIGIN}, {OTHER_APP_ORIGIN}/",
        http_body_bytes_max=BODY_BYTES_MAX,
    )
    async with run_server(settings) as running:
        yield running


def _vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()}


async def test_preflight_allows_the_bearer_header_and_json(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        for origin in (APP_ORIGIN, OTHER_APP_ORIGIN):
            r = await http.options(
                "/api/projects",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "PATCH",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            assert r.status_code == 200, r.text
            assert r.headers["access-control-allow-origin"] == origin
            allowed = {
                h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")
            }
            assert {"authorization", "content-type"} <= allowed
            assert "PATCH" in r.headers["access-control-allow-methods"]
            assert "origin" in _vary(r)
            assert int(r.headers["access-control-max-age"]) > 0
            # Bearer tokens, not cookies.
            assert "access-control-allow-credentials" not in r.headers


async def test_cross_origin_requests_expose_the_error_headers(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    async with server.client("alice") as http:
        ok = await http.get(f"/api/projects/{pid}", headers={"Origin": APP_ORIGIN})
        missing = await http.get("/api/projects/not-a-uuid", headers={"Origin": APP_ORIGIN})
    for r in (ok, missing):
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "origin" in _vary(r)
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "retry-after", "content-range", "accept-ranges"} <= exposed
    assert ok.status_code == 200
    assert missing.status_code == 422
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]


async def test_other_origins_get_no_cors_headers(server: RunningServer) -> None:
    async with server.client("alice") as http:
        preflight = await http.options(
            "/api/projects",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        simple = await http.get("/api/projects", headers={"Origin": "https://evil.example"})
        same_server = await http.get("/api/projects")
    assert preflight.status_code == 400
    assert preflight.json()["error"]["code"] == "cors_refused"
    assert simple.status_code == same_server.status_code == 200
    for r in (preflight, simple, same_server):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers


async def test_body_too_large_is_the_json_error_with_or_without_a_length(
    server: RunningServer,
) -> None:
    body = b'{"title": "' + b"x" * (2 * BODY_BYTES_MAX) + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with server.client("alice") as http:
        json_headers = {"content-type": "application/json", "x-request-id": "req-413"}
        declared = await http.post("/api/projects", content=body, headers=json_headers)
        streamed = await http.post("/api/projects", content=chunked(), headers=json_headers)
        # Refused before the route looked at the caller: still our shape.
        http.headers.pop("Authorization")
        anonymous = await http.post("/api/projects", content=body, headers=json_headers)
    assert "content-length" in declared.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    for r in (declared, streamed, anonymous):
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-request-id"] == "req-413"
        assert r.json() == {
            "error": {
                "code": "body_too_large",
                "message": "the request body is too large",
                "request_id": "req-413",
            }
        }


async def test_a_body_within_the_limit_still_works(server: RunningServer) -> None:
    async with server.client("alice") as http:
        r = await http.post("/api/projects", json={"title": "x" * 200})
    assert r.status_code == 201, r.text


async def test_unknown_routes_and_methods_answer_in_the_error_shape(server: RunningServer) -> None:
    async with server.client("alice") as http:
        missing = await http.get("/api/nothing-here")
        wrong_method = await http.put("/api/projects")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]

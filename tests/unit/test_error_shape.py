"""``ErrorShapeMiddleware`` on a bare ASGI app: an unexpected exception is a JSON 500 with
the request id (and is raised on, for the server to log); a response already started is left
alone."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from server.http.errors import ErrorShapeMiddleware
from server.log_context import RequestIdMiddleware


async def _broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug")


async def _broken_midway(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("a bug after the answer started")


def _client(app: object) -> httpx.AsyncClient:
    wrapped = RequestIdMiddleware(ErrorShapeMiddleware(app, body_bytes_max=1024))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_an_unexpected_exception_is_a_json_500_with_the_request_id() -> None:
    async with _client(_broken) as http:
        r = await http.get("/x", headers={"x-request-id": "abc-1"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "abc-1"
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal server error",
            "request_id": "abc-1",
        }
    }


async def test_it_is_raised_on_for_the_server_to_log() -> None:
    wrapped = ErrorShapeMiddleware(_broken, body_bytes_max=1024)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="a bug"):
        await wrapped({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 500


async def test_a_started_answer_is_not_replaced() -> None:
    async with _client(_broken_midway) as http:
        r = await http.get("/x")
    assert r.status_code == 200

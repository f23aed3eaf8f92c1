"""The OpenAPI schema is complete enough to generate a typed client from it.

Walks ``/openapi.json`` (built from the app, no server) and fails on any ``/api`` operation
without a success body with a schema, without its errors in the ``ErrorBody`` shape, without
the bearer security requirement, or without a request body where the route reads one.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from server.app import create_app
from server.settings import Settings

# Writes that take no body: the path says everything.
BODYLESS_WRITES = {
    ("POST", "/api/projects/{project_id}/versions/{version}/restore"),
    ("POST", "/api/jobs/{job_id}/cancel"),
}
ERROR_SCHEMAS = {"#/components/schemas/ErrorBody", "#/components/schemas/InvalidRenderBody"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(jwt_secret="x" * 40))


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        if path.startswith("/api/")
        for method, op in item.items()
    ]


def _schemas(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [media["schema"] for media in response.get("content", {}).values() if "schema" in media]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route, through the included routers (FastAPI keeps them as branches)."""
    found: list[APIRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _api_routes(included.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/api/"):
            found.append(route)
    return found


def _reads_body(route: APIRoute) -> bool:
    if route.body_field is not None:
        return True
    # Routes that stream or parse the body themselves take the Request.
    takes_request = any(
        p.annotation in (Request, "Request")
        for p in inspect.signature(route.endpoint).parameters.values()
    )
    return takes_request and bool(route.methods & {"POST", "PUT", "PATCH"})


def test_there_are_operations_to_check(spec: dict[str, Any]) -> None:
    assert len(_operations(spec)) >= 30


def test_every_operation_has_a_typed_success(spec: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(spec):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        typed = [s for s, r in successes.items() if s == "204" or _schemas(r)]
        # No success may be an untyped "{}" schema.
        empty = [s for s, r in successes.items() if any(not sch for sch in _schemas(r))]
        if not typed or empty:
            missing.append(f"{method} {path}: {sorted(successes)}")
    assert not missing, "\n".join(missing)


def test_every_error_is_the_error_body(spec: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in _operations(spec):
        failures = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        if "401" not in failures:
            wrong.append(f"{method} {path}: 401 not documented")
        if (op.get("parameters") or op.get("requestBody")) and "422" not in failures:
            wrong.append(f"{method} {path}: 422 not documented")
        if op.get("requestBody") and "413" not in failures:
            wrong.append(f"{method} {path}: 413 not documented")
        if op.get("requestBody") and "400" not in failures:
            wrong.append(f"{method} {path}: 400 (unparsable body) not documented")
        for status, response in failures.items():
            if list(response.get("content", {})) != ["application/json"]:
                wrong.append(f"{method} {path} {status}: {list(response.get('content', {}))}")
            refs = {s.get("$ref") for s in _schemas(response)}
            if not refs or not refs <= ERROR_SCHEMAS:
                wrong.append(f"{method} {path} {status}: {refs}")
    assert not wrong, "\n".join(wrong)


def test_validation_errors_are_documented_in_our_shape(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    detail = schemas["ErrorDetail"]["properties"]
    assert {"code", "message", "request_id"} <= set(detail)


def test_every_operation_needs_the_bearer_token(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer"}
    unsecured = [
        f"{method} {path}"
        for method, path, op in _operations(spec)
        if {"HTTPBearer": []} not in op.get("security", [])
    ]
    assert not unsecured, "\n".join(unsecured)


def test_every_body_a_route_reads_is_documented(app: FastAPI, spec: dict[str, Any]) -> None:
    undocumented = []
    routes = _api_routes(app.routes)
    assert sum(len(r.methods) for r in routes) == len(_operations(spec))
    for route in routes:
        for method in route.methods:
            op = spec["paths"][route.path][method.lower()]
            body = op.get("requestBody")
            if _reads_body(route) and not (body and body.get("content")):
                undocumented.append(f"{method} {route.path}: reads a body, documents none")
            is_write = method in ("POST", "PUT", "PATCH")
            if is_write and body is None and (method, route.path) not in BODYLESS_WRITES:
                undocumented.append(f"{method} {route.path}: a write without a body")
            for media in (body or {}).get("content", {}).values():
                if not media.get("schema"):
                    undocumented.append(f"{method} {route.path}: body without a schema")
    assert not undocumented, "\n".join(undocumented)


def test_uploads_are_multipart(spec: dict[str, Any]) -> None:
    for path in ("/api/projects/{project_id}/media", "/api/voices"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert list(content) == ["multipart/form-data"]
        properties = content["multipart/form-data"]["schema"]["properties"]
        assert any(
            p.get("format") == "binary" or p.get("items", {}).get("format") == "binary"
            for p in properties.values()
        )


def test_job_routes_answer_202_with_the_job(spec: dict[str, Any]) -> None:
    job_routes = [
        "/api/ai/content",
        "/api/projects/{project_id}/ai/subtitles",
        "/api/projects/{project_id}/ai/dubbing",
        "/api/projects/{project_id}/ai/thumbnail",
        "/api/projects/{project_id}/render",
        "/api/voices",
    ]
    for path in job_routes:
        responses = spec["paths"][path]["post"]["responses"]
        assert _schemas(responses["202"]) == [{"$ref": "#/components/schemas/JobOut"}], path
        assert {"402", "429", "503"} <= set(responses), path
        assert "Retry-After" in responses["429"]["headers"], path

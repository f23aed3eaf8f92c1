"""Schemathesis against the app's own OpenAPI schema: no request makes the server answer 5xx.

The server runs in-process with its AI providers pointed at the local fakes and jobs running in
process, so AI and render routes go as far as they would in production. Every operation gets
schema-valid (positive) and schema-violating (negative) requests, sent as the project's owner,
as a viewer, as a non-member, or without a token; path ids are either real (the project, a
version, a member, a job) or generated. Examples per operation scale with
``FLOWAI_LONG_TESTS``.

Uses the schemathesis 4 Python API: ``schemathesis.openapi.from_dict`` →
``schema.get_all_operations()`` → ``operation.as_strategy(GenerationMode, path_parameters=)``
→ ``case.call(base_url=, headers=)`` → ``case.validate_response(response,
checks=[not_a_server_error])``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.ai.helpers import ai_settings, grant
from tests.support.fake_providers import run_fake_providers
from tests.support.long_mode import long_mode, scale
from tests.support.server import RunningServer, run_server

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

# The long mode runs for minutes; the short mode keeps the project's default limit.
pytestmark = pytest.mark.timeout(scale(120, 1800))

EXAMPLES_PER_OPERATION = scale(10, 200)  # per generation mode
# Beyond "no 5xx": every answer is one the schema documents, in the documented shape (a typed
# client generated from the schema can rely on it).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Deleting the fuzzed project would leave every later operation a 404: it gets its own.
SACRIFICED = ("DELETE", "/api/projects/{project_id}")
REQUEST_TIMEOUT_S = 30


async def _ids(server: RunningServer) -> dict[str, str]:
    """Real ids for path parameters: a project with a version, a member and a job."""
    pid = await server.create_project("alice", "Fuzzed")
    doomed = await server.create_project("alice", "Deleted by the fuzzer")
    await server.add_member("alice", pid, "bob", "viewer")
    await grant(server, "alice", 10_000)
    async with server.client("alice") as http:
        version = await http.post(f"/api/projects/{pid}/versions", json={"label": "v"})
        assert version.status_code == 201, version.text
        job = await http.post("/api/ai/content", json={"kind": "titles", "brief": "a cat video"})
    ids = {
        "project_id": pid,
        "version": str(version.json()["version"]),
        "member_id": "bob",
        "doomed_project_id": doomed,
    }
    assert job.status_code == 202, job.text
    ids["job_id"] = job.json()["id"]
    return ids


def _fuzz(
    spec: dict[str, Any], base_url: str, ids: dict[str, str], tokens: list[str | None]
) -> tuple[int, list[str]]:
    """Run every operation's examples (blocking: call from a thread); returns the number of
    requests sent and the failures, one report per failing operation."""
    schema = schemathesis.openapi.from_dict(spec)
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = set(re.findall(r"{(\w+)", operation.path))
        fixed = {name: value for name, value in ids.items() if name in names}
        if (operation.method.upper(), operation.path) == SACRIFICED:
            fixed["project_id"] = ids["doomed_project_id"]
        inputs = list(operation.iter_parameters()) or len(operation.body)
        # Negative requests need something to violate: a parameter or a body.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if inputs else [])
        for mode in modes:
            cases = operation.as_strategy(mode)
            if fixed:
                cases = cases | operation.as_strategy(mode, path_parameters=fixed)

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=not long_mode(),  # the same requests on every short run
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],  # report the first failure as found
                suppress_health_check=list(HealthCheck),
            )
            @given(case=cases, token=st.sampled_from(tokens))
            def check(case: Any, token: str | None) -> None:
                nonlocal sent
                headers = {"Authorization": f"Bearer {token}"} if token else None
                response = case.call(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S)
                sent += 1
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    return sent, failures


async def test_no_operation_answers_5xx(tmp_path: Path, database_url: str) -> None:
    async with (
        run_fake_providers() as fake,
        run_server(ai_settings(tmp_path, database_url, fake)) as server,
    ):
        ids = await _ids(server)
        async with httpx.AsyncClient(base_url=server.http) as http:
            spec = (await http.get("/openapi.json")).json()
        tokens = [server.token("alice"), server.token("bob"), server.token("mallory"), None]
        # Schemathesis sends blocking requests: run it off the loop that serves them.
        sent, failures = await asyncio.to_thread(_fuzz, spec, server.http, ids, tokens)
    operations = sum(len(methods) for methods in spec["paths"].values())
    print(f"schemathesis: {operations} operations, {sent} requests, {len(failures)} failing")
    assert not failures, "\n\n".join(failures)


# Found by this suite in long mode: integers beyond the database column's range used to reach
# the query and fail there (asyncpg OverflowError, a 500) instead of being refused (422).
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/projects/{pid}/versions/3000000000"),
        ("POST", "/api/projects/{pid}/versions/99999999999999999999/restore"),
        ("GET", "/api/credits/transactions?before=99999999999999999999"),
    ],
)
async def test_out_of_range_integers_are_refused(
    server: RunningServer, method: str, path: str
) -> None:
    pid = await server.create_project("alice")
    async with server.client("alice") as http:
        response = await http.request(method, path.format(pid=pid))
    assert response.status_code == 422, response.text


# Found by this suite in long mode: PostgreSQL text cannot hold U+0000; such a string reached
# the INSERT (asyncpg CharacterNotInRepertoireError) and the request answered 500.
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/projects", {"title": "a\u0000b"}),
        ("POST", "/api/projects/{pid}/members", {"user_id": "x\u0000", "role": "editor"}),
        ("DELETE", "/api/projects/{pid}/members/x%00", None),
        ("POST", "/api/projects/{pid}/versions", {"label": "v\u0000"}),
    ],
)
async def test_text_with_nul_is_refused(
    server: RunningServer, method: str, path: str, body: dict[str, str] | None
) -> None:
    pid = await server.create_project("alice")
    async with server.client("alice") as http:
        response = await http.request(method, path.format(pid=pid), json=body)
    assert response.status_code in (404, 422), response.text

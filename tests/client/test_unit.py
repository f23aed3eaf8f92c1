"""The client's own unit tests (node --test): fractional index vectors, timeline reader fuzz,
writer validation, close-code policy, unsaved-change tracking; and the README's React example
type-checks against the built package."""

from __future__ import annotations

import pytest

from tests.client.node import needs_node, run_node

pytestmark = [needs_node, pytest.mark.usefixtures("client_build")]


async def test_client_unit_tests_pass() -> None:
    code, out, err = await run_node("--test", ".test-build/test/unit/")
    assert code == 0, out + err
    assert "# fail 0" in out
    passed = next(line for line in out.splitlines() if line.startswith("# pass "))
    assert int(passed.removeprefix("# pass ")) >= 15, out


async def test_react_example_type_checks() -> None:
    code, out, err = await run_node(
        "node_modules/typescript/bin/tsc", "-p", "tsconfig.example.json"
    )
    assert code == 0, out + err

"""The TypeScript ``readTimeline`` reads what the server's ``read_timeline`` reads.

Node makes random corrupt documents (client/test/unit/corrupt.ts) and reads each on a fresh
replica; here each update is applied to a pycrdt document and read by ``crdt.timeline``. Both
readers must give the same JSON, problems and their wording included.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from pycrdt import Doc

from crdt.timeline import read_timeline
from tests.client.node import needs_node, run_node

pytestmark = [needs_node, pytest.mark.usefixtures("client_build")]

CASES = 300


def _normalised(value: Any) -> Any:
    """Numbers as both sides mean them (JS prints ``30.0`` as ``30`` and 2**60 in full)."""
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert math.isfinite(value), "a read timeline holds finite numbers only"
        return float(value)
    return value


async def test_typescript_reader_matches_the_server_reader() -> None:
    code, out, err = await run_node(".test-build/test/parity/readCorruptDocs.js", str(CASES))
    assert code == 0, err
    cases = json.loads(out)
    assert len(cases) == CASES
    with_problems = 0
    for case in cases:
        doc: Doc[Any] = Doc()
        doc.apply_update(base64.b64decode(case["update"]))
        expected = _normalised(read_timeline(doc).to_json())
        assert _normalised(case["timeline"]) == expected, f"seed {case['seed']}"
        with_problems += bool(expected["problems"])
    # The generator must exercise the tolerant paths, not only well-formed documents.
    assert with_problems > CASES // 2

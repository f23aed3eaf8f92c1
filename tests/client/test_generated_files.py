"""Committed files that are generated from the server's code (or copied) must match it.

``client/test/vectors/fractional_index.json`` pins the TS fractional index keys to
``crdt.fractional_index``, ``timeline_writers.json`` the TS writers to ``crdt.timeline``'s;
``client/openapi.json`` is the input of ``client/src/api-types.ts``. When one fails: run the
generator named in the message and commit the result.
"""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.client.node import NODE, needs_node

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"


def _script(name: str) -> ModuleType:
    path = CLIENT_DIR / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"client_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fractional_index_vectors_match_the_server_implementation() -> None:
    gen = _script("gen_fractional_index_vectors")
    committed = gen.VECTORS_PATH.read_text(encoding="utf-8")
    assert committed == gen.render(gen.vectors()), (
        "client/test/vectors/fractional_index.json is stale: run "
        "`python client/scripts/gen_fractional_index_vectors.py`"
    )


def test_timeline_writer_vectors_match_the_server_writers() -> None:
    gen = _script("gen_writer_vectors")
    committed = gen.VECTORS_PATH.read_text(encoding="utf-8")
    assert committed == gen.render(gen.vectors()), (
        "client/test/vectors/timeline_writers.json is stale: run "
        "`python client/scripts/gen_writer_vectors.py`"
    )


def test_committed_openapi_schema_is_the_current_one() -> None:
    dump = _script("dump_openapi")
    committed = dump.OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == dump.render(dump.current_schema()), (
        "client/openapi.json is stale: run `python client/scripts/dump_openapi.py`, "
        "then `npm run gen:api` in client/"
    )


@needs_node
def test_api_types_are_generated_from_the_committed_schema(tmp_path: Path) -> None:
    if not (CLIENT_DIR / "node_modules" / "openapi-typescript").is_dir():
        pytest.fail("client/node_modules is missing: run `npm ci` in client/")
    assert NODE is not None
    out = tmp_path / "api-types.ts"
    cli = CLIENT_DIR / "node_modules" / "openapi-typescript" / "bin" / "cli.js"
    done = subprocess.run(
        [NODE, str(cli), "openapi.json", "-o", str(out)],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    committed = (CLIENT_DIR / "src" / "api-types.ts").read_text(encoding="utf-8")
    assert committed == out.read_text(encoding="utf-8"), (
        "client/src/api-types.ts is stale: run `npm run gen:api` in client/"
    )


def test_readme_shows_the_react_example_that_is_type_checked() -> None:
    readme = (CLIENT_DIR.parent / "README.md").read_text(encoding="utf-8")
    example = (CLIENT_DIR / "examples" / "ProjectEditor.tsx").read_text(encoding="utf-8")
    assert f"```tsx\n{example}```" in readme, (
        "README's React example differs from client/examples/ProjectEditor.tsx: copy it over"
    )

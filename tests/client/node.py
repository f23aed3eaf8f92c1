"""Build and run the @flowai/client package's Node tests from pytest."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
BUILD_DIR = CLIENT_DIR / ".test-build"
NODE = shutil.which("node")
NPM = shutil.which("npm")
NODE_TIMEOUT_S = 60.0

needs_node = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are needed to build and run the client"
)


def build_client() -> None:
    """Compile the package and its tests (``tsc``); ``npm ci`` must have run in client/."""
    if not (CLIENT_DIR / "node_modules" / "typescript").is_dir():
        pytest.fail("client/node_modules is missing: run `npm ci` in client/ (make test does)")
    assert NPM is not None
    for script in ("build", "build:test"):
        done = subprocess.run(
            [NPM, "run", "--silent", script],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"npm run {script} failed:\n{done.stdout}{done.stderr}"


async def run_node(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``node ARGS`` in client/ with ``env`` added; returns (exit code, stdout, stderr)."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        *args,
        cwd=CLIENT_DIR,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        output = out.decode() + err.decode()
        pytest.fail(f"node {' '.join(args)} did not finish in {NODE_TIMEOUT_S:.0f} s:\n{output}")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()

"""Run one browser scenario (``scenarios.mjs`` under Node) against a running server.

The scenario asks for server-side actions with a JSON line ``{"step": NAME, ...}`` on its
stdout; the handler of that name runs here and its answer goes back as one line on stdin. The
last line is ``{"result": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

BROWSER_DIR = Path(__file__).resolve().parent
ROOT = BROWSER_DIR.parent.parent
INSPECTOR_DIR = ROOT / "inspector"
SCRIPT = BROWSER_DIR / "scenarios.mjs"
NODE = shutil.which("node")
CHROMIUM = Path(os.environ.get("FLOWAI_CHROMIUM", "/usr/bin/chromium"))
SCENARIO_TIMEOUT_S = 90.0

Step = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def require_node_modules() -> None:
    """Fail (not skip) when Node or inspector/node_modules is missing: `make test` installs them."""
    if NODE is None:
        pytest.fail("node is not on PATH (the browser tests drive Chromium from Node)")
    if not (INSPECTOR_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail("inspector/node_modules is missing: run `npm ci` in inspector/")


def require_browser() -> None:
    """Fail (not skip) when the browser tests cannot run: `make test` installs Chromium."""
    require_node_modules()
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)")


async def run_scenario(
    name: str, config: dict[str, Any], steps: dict[str, Step] | None = None
) -> dict[str, Any]:
    assert NODE is not None
    steps = steps or {}
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPT),
        name,
        json.dumps(config),
        cwd=BROWSER_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    stderr_task = asyncio.create_task(process.stderr.read())
    result: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            while line := await process.stdout.readline():
                message = json.loads(line)
                if "result" in message:
                    result = message["result"]
                    continue
                handler = steps.get(message["step"])
                if handler is None:
                    answer: dict[str, Any] = {"error": f"no step {message['step']!r} here"}
                else:
                    try:
                        answer = await handler(message) or {}
                    except Exception as exc:
                        answer = {"error": repr(exc)}
                process.stdin.write((json.dumps(answer) + "\n").encode())
                await process.stdin.drain()
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"browser scenario {name} did not finish:\n{(await stderr_task).decode()}")
    stderr = (await stderr_task).decode()
    assert process.returncode == 0, f"browser scenario {name} failed:\n{stderr}"
    assert result is not None, f"browser scenario {name} gave no result:\n{stderr}"
    return result

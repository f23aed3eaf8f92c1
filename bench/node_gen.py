"""Runs the Node load generators (``bench/node/*.mjs``) from Python: one or several processes,
each given its share of the clients, started together on a word and read back as JSON.

A generator process stays up for many runs (its JIT warm, as a long-running client's would be).
Per run it reads its input as one JSON line on stdin, says ``{"ready": ...}`` once it has
parsed it (and, for the fan-out, connected its observers), waits for ``go``, prints one JSON
result, then waits for ``close`` and prints a last line. The Python side only hands out work
and collects results: every socket lives in Node, so the benchmark's own process is not what
gets measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
INTEROP_MODULES = ROOT / "tests" / "interop" / "node_modules"
# A storm's result lists every client's time: far longer than asyncio's 64 KiB line default.
LINE_BYTES_MAX = 64 * 1024 * 1024
STOP_TIMEOUT_S = 15.0


def node_binary() -> str:
    node = shutil.which("node")
    if node is None or not (INTEROP_MODULES / "ws").exists():
        raise RuntimeError("the Node load generator needs node and `npm ci` in tests/interop")
    return node


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt round-robin into ``parts`` non-empty shares (fewer if too few items)."""
    parts = max(1, min(parts, len(items)))
    return [list(items[k::parts]) for k in range(parts)]


@dataclass
class Generator:
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def say(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word.encode() + b"\n")
        await self.process.stdin.drain()

    async def give(self, payload: dict[str, Any]) -> None:
        await self.say(json.dumps(payload))

    async def line(self, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not raw:
            raise RuntimeError(f"load generator {self.pid} exited ({self.process.returncode})")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()  # end of input: the generator exits by itself
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 2)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def _pinned(cpus: set[int] | None) -> Any:
    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return pin


async def start(script: str, count: int, *, cpus: set[int] | None) -> list[Generator]:
    """``count`` ``bench/node/<script>`` processes, waiting for their first input."""
    return await spawn([node_binary(), str(NODE_DIR / script), "-"], count, cpus=cpus)


async def spawn(argv: Sequence[str], count: int, *, cpus: set[int] | None) -> list[Generator]:
    """``count`` processes of ``argv`` that speak the line protocol above (the Node scripts,
    or ``bench/native``'s programs)."""
    generators: list[Generator] = []
    try:
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=LINE_BYTES_MAX,
                preexec_fn=_pinned(cpus),
            )
            generators.append(Generator(process))
    except BaseException:
        await stop_all(generators)
        raise
    return generators


async def hand_out(
    generators: Sequence[Generator],
    inputs: Sequence[dict[str, Any]],
    timeout_s: float = 120.0,
) -> list[dict[str, Any]]:
    """Input k to generator k; returns their ready lines (the rest stay idle this run)."""
    used = generators[: len(inputs)]
    await asyncio.gather(*(g.give(i) for g, i in zip(used, inputs, strict=True)))
    return await read_all(used, timeout_s)


async def say_all(generators: Sequence[Generator], word: str) -> None:
    await asyncio.gather(*(g.say(word) for g in generators))


async def read_all(generators: Sequence[Generator], timeout_s: float) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(g.line(timeout_s) for g in generators)))


async def stop_all(generators: Sequence[Generator]) -> None:
    await asyncio.gather(*(g.stop() for g in generators))

"""Run the ``flowai`` command as a user would: subprocesses on a clean environment, with the
data directory at its default under a temporary ``HOME`` (or as given)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.process import free_port

_NOT_INHERITED = ("FLOWAI_", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "OPENAI_", "ELEVENLABS_")


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any FLOWAI_* or provider setting, ``HOME`` moved
    to ``home`` (so the default data directory is ``home/.local/share/flowai``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env["HOME"] = str(home)
    env.update(settings)
    return env


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def flowai(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


class Serve:
    """``flowai serve`` in a subprocess; its stderr is kept in ``log``."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "FLOWAI_PORT": str(self.port)}
        self.cwd = cwd
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60) -> Serve:
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "serve", env=self.env, cwd=self.cwd, stderr=err
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient() as http:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"flowai serve exited with {self.proc.returncode}")
                try:
                    if (await http.get(f"{self.http}/readyz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if loop.time() > deadline:
                    raise TimeoutError("flowai serve did not become ready")
                await asyncio.sleep(0.1)

    async def terminate(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

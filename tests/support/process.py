"""Run ``flowai serve`` as a real subprocess (crash and multi-process tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from tests.support.server import TEST_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.port = port or free_port()
        self.args = args
        self.env = {
            **os.environ,
            "FLOWAI_DATABASE_URL": database_url,
            "FLOWAI_JWT_SECRET": TEST_SECRET,
            "FLOWAI_PORT": str(self.port),
            "FLOWAI_DATA_DIR": str(data_dir),
            "FLOWAI_LOG_JSON": "false",
            "FLOWAI_LOG_LEVEL": "WARNING",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "serve", *self.args, env=self.env
        )
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as http:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}")
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError("server did not start")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 30)

    async def stop_or_kill(self) -> None:
        """Stop gracefully if it is running; kill it if that does not finish in time (a
        graceful stop waits for an unreachable database to take the last updates)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await self.stop()
        except TimeoutError:
            self.kill()
            await self.proc.wait()

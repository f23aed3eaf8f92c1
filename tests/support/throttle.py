"""A TCP proxy on 127.0.0.1 that limits server-to-client bandwidth, like a slow link."""

from __future__ import annotations

import asyncio
import contextlib


class ThrottlingProxy:
    def __init__(self, target_port: int, bytes_per_s: int) -> None:
        self.target_port = target_port
        self.bytes_per_s = bytes_per_s
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> ThrottlingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        up = asyncio.create_task(self._pipe(client_r, server_w, None))
        down = asyncio.create_task(self._pipe(server_r, client_w, self.bytes_per_s))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (client_w, server_w):
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: int | None
    ) -> None:
        chunk = 16 * 1024 if rate is None else max(1024, rate // 20)
        while data := await reader.read(chunk):
            writer.write(data)
            await writer.drain()
            if rate is not None:
                await asyncio.sleep(len(data) / rate)

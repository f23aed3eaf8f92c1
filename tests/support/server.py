"""Run the real ASGI app on uvicorn inside the test's event loop, on a free local port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from server.app import HTTP_PROTOCOL, WEBSOCKET_PROTOCOL, create_app
from server.auth import mint_token
from server.composition.services import Services
from server.settings import Settings

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256"


@dataclass
class RunningServer:
    app: FastAPI
    settings: Settings
    port: int
    server: uvicorn.Server

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, user_id: str, **kw: object) -> str:
        return mint_token(self.settings.resolved_jwt_secret(), user_id, **kw)  # type: ignore[arg-type]

    def ws_url(self, project_id: str, user_id: str | None = None, **params: str) -> str:
        query = dict(params)
        if user_id is not None:
            query["token"] = self.token(user_id)
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ws://127.0.0.1:{self.port}/ws/{project_id}" + (f"?{qs}" if qs else "")

    def client(self, user_id: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.http, headers={"Authorization": f"Bearer {self.token(user_id)}"}
        )

    async def create_project(self, owner: str, title: str = "Test") -> str:
        async with self.client(owner) as http:
            response = await http.post("/api/projects", json={"title": title})
            assert response.status_code == 201, response.text
            project_id: str = response.json()["id"]
            return project_id

    async def add_member(self, owner: str, project_id: str, user_id: str, role: str) -> None:
        async with self.client(owner) as http:
            response = await http.post(
                f"/api/projects/{project_id}/members", json={"user_id": user_id, "role": role}
            )
            assert response.status_code == 200, response.text


@asynccontextmanager
async def run_server(settings: Settings) -> AsyncIterator[RunningServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        http=HTTP_PROTOCOL,
        ws=WEBSOCKET_PROTOCOL,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited during start-up")
            await asyncio.sleep(0.01)
        yield RunningServer(app, settings, port, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()

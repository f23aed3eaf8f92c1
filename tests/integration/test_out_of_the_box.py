"""`flowai serve` as `make serve` runs it, on the embedded defaults, driven by the other
commands the way the README shows: no database, secret or data directory configured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crdt import timeline as tl
from crdt.timeline import read_timeline
from tests.ai.helpers import wait_job
from tests.support import media
from tests.support.cli import Serve, clean_env, flowai
from tests.support.fake_providers import OPENAI_KEY, run_fake_providers
from tests.support.process import free_port
from tests.support.yclient import YClient, eventually


def _stop_leftover_postgres(pg_dir: Path) -> None:
    """If the server was killed, its embedded PostgreSQL outlived it: stop that one."""
    pid_file = pg_dir / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)


def _still_timeline(image: Path) -> Any:
    def write(doc: Any) -> None:
        track = tl.add_track(doc, "video", "V1")
        asset = tl.add_asset(doc, "image", "green", image.as_uri())
        tl.add_clip(doc, track, "image", start_ms=0, duration_ms=1000, asset=asset)

    return write


@pytest.fixture
def home() -> Iterator[Path]:
    """A home directory outside pytest's temporary root: run as root, pgserver runs
    PostgreSQL as another user, who must traverse to the data, and every pytest session that
    starts meanwhile makes that root private again (0700)."""
    path = Path(tempfile.mkdtemp(prefix="flowai-home-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_serve_on_embedded_defaults_runs_jobs_seen_live(tmp_path: Path, home: Path) -> None:
    elsewhere, sources = tmp_path / "elsewhere", home / "sources"
    for folder in (elsewhere, sources):
        folder.mkdir()
    data_dir = home / ".local" / "share" / "flowai"
    repo = Path(__file__).resolve().parents[2]
    async with run_fake_providers() as fake:
        env = clean_env(
            home,
            FLOWAI_LOG_JSON="true",
            OPENAI_API_KEY=OPENAI_KEY,
            FLOWAI_OPENAI_BASE_URL=fake.openai_base_url,
            FLOWAI_RENDER_FILE_ROOTS=json.dumps([str(sources)]),
            FLOWAI_JOB_POLL_S="0.2",
        )
        server = Serve(env, cwd=repo, log=tmp_path / "serve.log")
        try:
            await server.start()
            # The other commands, run from another directory, find the server's data.
            token = await flowai("token", "--user", "alice", env=env, cwd=elsewhere)
            assert token.code == 0, token.err
            granted = await flowai("credits", "grant", "alice", "1000", env=env, cwd=elsewhere)
            assert granted.code == 0, granted.err
            assert "granted 1000 credits to alice" in granted.out
            for ran in (token, granted):
                assert "XDG_RUNTIME_DIR" not in ran.err

            headers = {"Authorization": f"Bearer {token.out.strip()}"}
            async with httpx.AsyncClient(base_url=server.http, headers=headers) as http:
                r = await http.post("/api/projects", json={"title": "Out of the box"})
                assert r.status_code == 201, r.text
                pid = r.json()["id"]
                query = f"token={token.out.strip()}"
                client = await YClient(f"ws://127.0.0.1:{server.port}/ws/{pid}?{query}").connect()
                await client.wait_synced()
                image = await asyncio.to_thread(media.still, sources / "green.png", "green")
                await client.edit(_still_timeline(image))

                render = await http.post(f"/api/projects/{pid}/render", json={"resolution": "180p"})
                assert render.status_code == 202, render.text
                thumb = await http.post(f"/api/projects/{pid}/ai/thumbnail", json={"prompt": "x"})
                assert thumb.status_code == 202, thumb.text
                rendered = await wait_job(http, render.json()["id"], timeout=45)
                thumbnail = await wait_job(http, thumb.json()["id"], timeout=45)
            assert rendered["status"] == "succeeded", rendered
            assert thumbnail["status"] == "succeeded", thumbnail
            assert fake.calls("image")
            # Both results reached the open document live, without a reload.
            for job in (rendered, thumbnail):
                asset_id = job["result"]["asset_id"]
                await eventually(lambda a=asset_id: read_timeline(client.doc).asset(a) is not None)
            await client.close()

            assert await server.terminate() == 0  # SIGTERM is a normal stop
            assert not (data_dir / "pg" / "postmaster.pid").exists()  # PostgreSQL stopped too
        finally:
            with contextlib.suppress(TimeoutError):
                await server.terminate(timeout=20)
            await server.kill()
            _stop_leftover_postgres(data_dir / "pg")

    assert (data_dir / "pg" / "PG_VERSION").is_file() and (data_dir / "jwt_secret").is_file()
    log = (tmp_path / "serve.log").read_text()
    assert "XDG_RUNTIME_DIR" not in log
    lines = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
    assert all("\n" not in entry["message"] for entry in lines)
    started = [e for e in lines if e["message"].startswith("embedded PostgreSQL")]
    assert [e["message"] for e in started] == ["embedded PostgreSQL created"]
    assert any(e.get("data_dir") == str(data_dir) for e in lines)


async def test_commands_other_than_serve_refuse_a_missing_data_dir(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    default = tmp_path / "home" / ".local" / "share" / "flowai"
    shown = await flowai("credits", "show", "alice", env=env, cwd=tmp_path)
    assert shown.code == 2
    assert f"no embedded database (pg/) in the data directory {default}" in shown.err
    assert "FLOWAI_DATA_DIR is unset" in shown.err and "FLOWAI_DATABASE_URL" in shown.err
    token = await flowai("token", "--user", "alice", env=env, cwd=tmp_path)
    assert token.code == 2 and token.out == ""
    assert f"no JWT secret (jwt_secret) in the data directory {default}" in token.err
    elsewhere = {**env, "FLOWAI_DATA_DIR": str(tmp_path / "gone")}
    users = await flowai("users", "revoke", "bob", env=elsewhere, cwd=tmp_path)
    assert users.code == 2 and f"{tmp_path / 'gone'} (from FLOWAI_DATA_DIR)" in users.err
    assert not default.exists() and not (tmp_path / "gone").exists()
    assert not (tmp_path / ".flowai").exists()


async def test_a_worker_without_redis_says_what_to_configure(tmp_path: Path) -> None:
    ran = await flowai("worker", env=clean_env(tmp_path), cwd=tmp_path)
    assert ran.code == 2
    assert ran.err.startswith("flowai worker: FLOWAI_REDIS_URL is not set")


async def test_make_serve_ends_with_status_0_on_sigterm(tmp_path: Path, database_url: str) -> None:
    """`make serve` as written in the Makefile, with its venv replaced by one whose
    ``flowai`` is this checkout (so make installs nothing)."""
    import psutil

    repo = Path(__file__).resolve().parents[2]
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    shim = venv_bin / "flowai"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m server.cli "$@"\n')
    shim.chmod(0o755)
    port = free_port()
    env = clean_env(
        tmp_path,
        FLOWAI_DATABASE_URL=database_url,
        FLOWAI_DATA_DIR=str(tmp_path / "data"),
        FLOWAI_PORT=str(port),
        FLOWAI_LOG_LEVEL="WARNING",
    )
    make = await asyncio.create_subprocess_exec(
        "make", "-C", str(repo), "serve", f"VENV={tmp_path / 'venv'}",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):  # at most 30 s
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        children = psutil.Process(make.pid).children()
        assert [c.cmdline()[1:4] for c in children] == [["-m", "server.cli", "serve"]]
        children[0].terminate()  # what a supervisor or `kill` sends the server
        _, err = await asyncio.wait_for(make.communicate(), 30)
    finally:
        if make.returncode is None:
            for child in psutil.Process(make.pid).children(recursive=True):
                child.kill()
            make.kill()
            await make.wait()
    assert make.returncode == 0, err.decode()
    assert b"Error" not in err

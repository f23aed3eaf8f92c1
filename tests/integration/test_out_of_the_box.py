"""`flowai serve` as `make serve` runs it, on the embedded defaults, driven by the other
commands the way the README shows: no database, secret or data directory configured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from crdt import timeline as tl
from crdt.timeline import read_timeline
from tests.ai.helpers import wait_job
from tests.support import media
from tests.support.cli import Serve, clean_env, flowai
from tests.support.fake_providers import OPENAI_KEY, run_fake_providers
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


async def test_serve_on_embedded_defaults_runs_jobs_seen_live(tmp_path: Path) -> None:
    home, elsewhere, sources = tmp_path / "home", tmp_path / "elsewhere", tmp_path / "sources"
    for folder in (home, elsewhere, sources):
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

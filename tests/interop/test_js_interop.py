"""The official JS client (``yjs`` + ``y-websocket`` under Node) against the real server.

``timeline_clients.mjs`` runs the JS clients in a Node subprocess; these tests start it against
the in-process server, then check with a pycrdt client (and the REST read model) that the
server holds exactly what the JS clients converged to.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map

from crdt.timeline import ROOTS, add_clip, add_track, read_timeline, trim_clip
from tests.support.server import RunningServer
from tests.support.yclient import YClient, eventually

INTEROP_DIR = Path(__file__).resolve().parent
SCRIPT = INTEROP_DIR / "timeline_clients.mjs"
NODE = shutil.which("node")
JS_TIMEOUT_S = 60.0

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed to run the JS client)"),
]


@pytest.fixture(scope="module", autouse=True)
def _node_modules() -> None:
    if not (INTEROP_DIR / "node_modules" / "y-websocket").is_dir():
        pytest.fail("tests/interop/node_modules is missing: run `npm ci` in tests/interop")


def _plain(value: Any) -> Any:
    """pycrdt content as JSON would carry it: JS numbers come back as floats (``1000.0``)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def roots_json(doc: Doc[Any]) -> dict[str, Any]:
    """The four timeline roots as plain JSON, comparable with the JS script's ``roots``."""
    return {name: _plain(doc.get(name, type=Map).to_py()) for name in ROOTS}


async def run_js(server: RunningServer, project_id: str, *args: str) -> dict[str, Any]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(SCRIPT),
        f"--url=ws://127.0.0.1:{server.port}/ws",
        f"--room={project_id}",
        f"--timeout-ms={int(JS_TIMEOUT_S * 1000) - 5000}",
        *args,
        cwd=INTEROP_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), JS_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail(f"the JS clients did not finish within {JS_TIMEOUT_S:.0f} s")
    assert process.returncode == 0, f"JS clients failed ({process.returncode}):\n{err.decode()}"
    result: dict[str, Any] = json.loads(out)
    return result


async def _synced_client(server: RunningServer, project_id: str, user: str) -> YClient:
    client = await YClient(server.ws_url(project_id, user)).connect()
    await client.wait_synced()
    return client


async def _project_with_editors(server: RunningServer, *editors: str) -> str:
    project_id = await server.create_project("alice", "Interop")
    for user in editors:
        await server.add_member("alice", project_id, user, "editor")
    return project_id


async def test_js_clients_converge_and_server_holds_the_same_timeline(
    server: RunningServer,
) -> None:
    pid = await _project_with_editors(server, "bob", "carol")
    tokens = [f"--token={server.token(user)}" for user in ("alice", "bob", "carol")]

    result = await run_js(server, pid, *tokens)

    assert result["denied"] == []
    assert result["awareness"] == [["js-0", "js-1", "js-2"]] * 3
    roots = result["roots"]
    assert roots["project"]["title"] == "Interop"
    assert set(roots["tracks"]) == {"t-js0", "t-js1", "t-js2"}
    assert roots["tracks"]["t-js0"]["name"] == "Main"
    # Deleted while another client moved it: the delete wins.
    assert "c-js1-b" not in roots["clips"]
    shared = roots["clips"]["c-js0-a"]
    # Concurrent changes of different fields of one clip all survive; for the field every
    # client set, one of their values wins everywhere.
    assert (shared["duration_ms"], shared["source_in_ms"], shared["volume"]) == (2500, 1500, 0.5)
    assert shared["start_ms"] in {10000, 10500, 11000}

    observer = await _synced_client(server, pid, "alice")
    assert roots_json(observer.doc) == roots
    timeline = read_timeline(observer.doc)
    assert timeline.problems == ()
    assert [c.id for c in timeline.clips_on("t-js0")] == ["c-js0-b", "c-js0-a"]
    assert timeline.clip("c-js0-a").asset == "a-js0"  # type: ignore[union-attr]
    async with server.client("alice") as http:
        response = await http.get(f"/api/projects/{pid}")
    assert response.status_code == 200
    assert response.json()["timeline"] == json.loads(json.dumps(timeline.to_json()))
    await observer.close()


async def test_python_and_js_clients_edit_at_the_same_time(server: RunningServer) -> None:
    pid = await _project_with_editors(server, "bob", "carol", "dave")
    py = await _synced_client(server, pid, "dave")
    await py.edit(lambda d: add_track(d, "subtitle", "Python", track_id="t-py"))
    tokens = [f"--token={server.token(user)}" for user in ("alice", "bob", "carol")]
    js = asyncio.create_task(
        run_js(server, pid, *tokens, "--expect=tracks/t-py", "--expect=clips/c-py-done")
    )

    # Keep editing, including the clip the JS clients fight over, until they have made it and
    # some of our edits to it went out while they were still running.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    shared_edits = 0
    n = 0
    while (shared_edits < 5 or n < 20) and loop.time() < deadline and not js.done():
        await py.edit(
            lambda d, n=n: add_clip(
                d,
                "t-py",
                "subtitle",
                start_ms=n * 1000,
                duration_ms=900,
                text=f"line {n}",
                clip_id=f"c-py-{n}",
            )
        )
        if "c-js0-a" in py.doc.get("clips", type=Map):
            await py.edit(lambda d, n=n: trim_clip(d, "c-js0-a", source_in_ms=100 + n))
            shared_edits += 1
        n += 1
        await asyncio.sleep(0.01)
    await py.edit(
        lambda d: add_clip(d, "t-py", "subtitle", start_ms=0, duration_ms=1, clip_id="c-py-done")
    )
    result = await js
    roots = result["roots"]

    assert shared_edits >= 1, "the JS clients' shared clip never reached the Python client"
    assert {f"c-py-{i}" for i in range(n)} | {"c-py-done"} <= set(roots["clips"])
    assert {"t-js0", "t-js1", "t-js2", "t-py"} == set(roots["tracks"])
    await eventually(lambda: roots_json(py.doc) == roots, timeout=10)
    late = await _synced_client(server, pid, "alice")
    assert roots_json(late.doc) == roots
    assert read_timeline(late.doc).problems == ()
    await py.close()
    await late.close()


async def test_js_viewer_edits_are_refused_and_reported(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Interop")
    await server.add_member("alice", pid, "vera", "viewer")
    owner = await _synced_client(server, pid, "alice")
    before = roots_json(owner.doc)

    result = await run_js(
        server,
        pid,
        "--scenario=viewer",
        f"--token={server.token('alice')}",
        f"--viewer-token={server.token('vera')}",
    )

    # y-websocket received the y-protocols permission-denied message with the server's reason.
    assert len(result["denied"]) == 1
    assert "read-only" in result["denied"][0]
    # The viewer keeps its local change and still receives the editor's...
    assert {"t-viewer", "t-editor"} <= set(result["viewerRoots"]["tracks"])
    # ...but nobody else ever sees it.
    editor_roots = result["roots"]
    assert set(editor_roots["tracks"]) == {"t-editor"}
    assert editor_roots["project"] == before["project"]
    await eventually(lambda: "t-editor" in roots_json(owner.doc)["tracks"])
    assert roots_json(owner.doc) == editor_roots
    await owner.close()

    # Nor was it stored: the reloaded room has only the editor's change.
    await eventually(lambda: server.services.rooms.get(pid) is None)
    reloaded = await _synced_client(server, pid, "alice")
    assert roots_json(reloaded.doc) == editor_roots
    await reloaded.close()

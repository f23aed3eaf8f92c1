"""OpenTimelineIO over HTTP: export a project, import it as a new one, same timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ai.helpers import timeline
from tests.support import media
from tests.support.server import RunningServer


async def test_export_then_import_gives_the_same_timeline(
    render_server: RunningServer, sources: Path
) -> None:
    server = render_server
    pid = await server.create_project("alice", "Holiday")
    uris = {name: f"media://projects/{pid}/uploads/{name}" for name in ("red", "pattern", "blue")}
    uris["tone"] = f"media://projects/{pid}/uploads/tone.wav"
    await server.services.rooms.edit(pid, lambda doc: media.write_sample(doc, uris))
    await server.add_member("alice", pid, "vera", "viewer")

    async with server.client("vera") as http:
        exported = await http.get(f"/api/projects/{pid}/export.otio")
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("application/vnd.opentimelineio+json")
        assert 'filename="Holiday.otio"' in exported.headers["content-disposition"]
        original = await timeline(http, pid)

    async with server.client("bob") as http:
        imported = await http.post("/api/projects/import.otio", content=exported.content)
        assert imported.status_code == 201, imported.text
        body: dict[str, Any] = imported.json()
        assert body["role"] == "owner" and body["skipped"] == []
        copy = await timeline(http, body["id"])
        titled = await http.post(
            "/api/projects/import.otio", params={"title": "Cut 2"}, content=exported.content
        )
        assert titled.status_code == 201 and titled.json()["title"] == "Cut 2"

    assert copy == original
    assert body["title"] == "Holiday"  # the timeline's own title travels in the file


async def test_import_refuses_bad_documents(render_server: RunningServer) -> None:
    async with render_server.client("bob") as http:
        response = await http.post("/api/projects/import.otio", content=b"\xff\xfe")
        assert response.status_code == 422
        response = await http.post("/api/projects/import.otio", content=b'{"a": 1}')
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_otio"
        response = await http.get("/api/projects/00000000-0000-0000-0000-000000000000/export.otio")
        assert response.status_code == 404

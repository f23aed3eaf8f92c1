"""Sync over real websockets against the running app."""

from __future__ import annotations

import asyncio

from pycrdt import Doc, Map

from crdt.timeline import add_clip, add_track, read_timeline
from tests.support.server import RunningServer
from tests.support.yclient import YClient, eventually


def _timeline(doc: Doc) -> dict[str, object]:
    return read_timeline(doc).to_json()


async def test_clients_converge_and_late_joiner_gets_full_state(server: RunningServer) -> None:
    pid = await server.create_project("alice", "Demo")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    b = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await b.wait_synced()
    assert _timeline(a.doc)["project"]["title"] == "Demo"  # type: ignore[index]

    track = {}

    def make_track(doc: Doc) -> None:
        track["id"] = add_track(doc, "video", "V1")

    await a.edit(make_track)
    await eventually(lambda: len(_timeline(b.doc)["tracks"]) == 1)  # type: ignore[arg-type]
    await b.edit(lambda d: add_clip(d, track["id"], "video", start_ms=0, duration_ms=1000))
    await a.edit(lambda d: add_clip(d, track["id"], "video", start_ms=1000, duration_ms=500))
    await eventually(lambda: _timeline(a.doc) == _timeline(b.doc))
    assert len(_timeline(a.doc)["clips"]) == 2  # type: ignore[arg-type]

    late = await YClient(server.ws_url(pid, "alice")).connect()
    await late.wait_synced()
    assert _timeline(late.doc) == _timeline(a.doc)
    for c in (a, b, late):
        await c.close()


async def test_offline_edits_merge_on_reconnect(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    online = await YClient(server.ws_url(pid, "alice")).connect()
    await online.wait_synced()
    offline_doc = Doc()
    first = await YClient(server.ws_url(pid, "alice"), offline_doc).connect()
    await first.wait_synced()
    await first.close()
    # Edits made while disconnected...
    offline_doc.get("tracks", type=Map)["t-offline"] = Map(
        {"kind": "audio", "name": "A", "order": "V"}
    )
    await online.edit(
        lambda d: d.get("tracks", type=Map).__setitem__(
            "t-online", Map({"kind": "video", "name": "V", "order": "a"})
        )
    )
    # ...reach the server when the client reconnects (the server's step 1 asks for them).
    again = await YClient(server.ws_url(pid, "alice"), offline_doc).connect()
    await again.wait_synced()
    await eventually(
        lambda: {t["id"] for t in _timeline(online.doc)["tracks"]} == {"t-offline", "t-online"}
    )  # type: ignore[index,union-attr]
    await eventually(lambda: _timeline(online.doc) == _timeline(offline_doc))
    await online.close()
    await again.close()


async def test_awareness_is_forwarded_and_removed_on_disconnect(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    b = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await b.wait_synced()
    await a.set_awareness(1111, 1, '{"user":{"name":"Zoë"},"cursor":3}')
    await eventually(lambda: 1111 in b.awareness)
    assert b.awareness[1111] == '{"user":{"name":"Zoë"},"cursor":3}'
    # Coalescing keeps only the newest state of a burst.
    for clock in range(2, 40):
        await a.set_awareness(1111, clock, f'{{"cursor":{clock}}}')
    await eventually(lambda: b.awareness.get(1111) == '{"cursor":39}')
    # A late joiner is told who is present; a query gets the same answer.
    c = await YClient(server.ws_url(pid, "alice")).connect()
    await eventually(lambda: 1111 in c.awareness)
    await a.close()
    await eventually(lambda: 1111 not in b.awareness and 1111 not in c.awareness)
    await b.close()
    await c.close()


async def test_query_awareness_is_answered(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    await a.set_awareness(7, 1, '{"x":1}')
    b = await YClient(server.ws_url(pid, "alice")).connect(handshake=False)
    await eventually(lambda: 7 in b.awareness)
    b.awareness.clear()
    await b.send(b"\x03")
    await eventually(lambda: 7 in b.awareness)
    await a.close()
    await b.close()


async def test_room_unloads_after_grace_and_reloads_same_content(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    a = await YClient(server.ws_url(pid, "alice")).connect()
    await a.wait_synced()
    await a.edit(lambda d: add_track(d, "video", "V1", track_id="t1"))
    expected = _timeline(a.doc)
    await a.close()
    await eventually(lambda: server.services.rooms.get(pid) is None)
    b = await YClient(server.ws_url(pid, "alice")).connect()
    await b.wait_synced()
    assert _timeline(b.doc) == expected
    await b.close()


async def test_many_joiners_at_once_all_sync(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.services.rooms.edit(pid, lambda d: add_track(d, "video", "V", track_id="t"))
    clients = [YClient(server.ws_url(pid, "alice")) for _ in range(60)]
    await asyncio.gather(*(c.connect() for c in clients))
    await asyncio.gather(*(c.wait_synced() for c in clients))
    assert all(_timeline(c.doc)["tracks"] for c in clients)
    await asyncio.gather(*(c.close() for c in clients))

"""Every close code, bad input, and roles, over real websockets."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import websockets
from pycrdt import Map

from crdt.protocol import encode_sync_step1, encode_update
from crdt.timeline import add_track, read_timeline
from server.auth import mint_token
from server.close_codes import CloseCode
from tests.conftest import make_settings
from tests.support.server import TEST_SECRET, RunningServer, run_server
from tests.support.yclient import YClient, eventually


async def _close_code(url: str, *frames: bytes | str, headers: dict[str, str] | None = None) -> int:
    client = await YClient(url, headers=headers).connect(handshake=False)
    for frame in frames:
        try:
            await client.ws.send(frame)
        except websockets.ConnectionClosed:
            break
    code = await client.wait_closed()
    assert code is not None
    return code


async def test_bad_missing_and_expired_tokens_get_4401(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    base = f"ws://127.0.0.1:{server.port}/ws/{pid}"
    assert await _close_code(base) == CloseCode.NOT_AUTHENTICATED
    assert await _close_code(base + "?token=not-a-jwt") == CloseCode.NOT_AUTHENTICATED
    wrong_key = mint_token("another-secret-of-sufficient-length-xx", "alice")
    assert await _close_code(f"{base}?token={wrong_key}") == CloseCode.NOT_AUTHENTICATED
    expired = mint_token(TEST_SECRET, "alice", ttl_s=-3600)
    assert await _close_code(f"{base}?token={expired}") == CloseCode.NOT_AUTHENTICATED


async def test_bearer_header_is_accepted(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    client = await YClient(f"ws://127.0.0.1:{server.port}/ws/{pid}", headers=headers).connect()
    await client.wait_synced()
    await client.close()


async def test_non_member_4403_and_unknown_project_4404(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    assert await _close_code(server.ws_url(pid, "mallory")) == CloseCode.NOT_A_MEMBER
    assert await _close_code(server.ws_url(str(uuid.uuid4()), "alice")) == CloseCode.NO_SUCH_PROJECT
    assert await _close_code(server.ws_url("not-a-uuid", "alice")) == CloseCode.NO_SUCH_PROJECT


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x02\x05ab",  # update shorter than its declared length
        b"\x00\x02\x03\xff\xff\xff",  # an update that does not decode
        b"\x00\x00\x02\xff\xff",  # a state vector that does not decode
        b"\x07",  # unknown message type
        b"\x00\x09\x00",  # unknown sync type
        b"\x01\x05\x01\x01\x01\x01{",  # awareness with a state that is not JSON
        b"\xff" * 16,
    ],
)
async def test_garbage_closes_4400_and_leaves_room_intact(
    server: RunningServer, frame: bytes
) -> None:
    pid = await server.create_project("alice")
    good = await YClient(server.ws_url(pid, "alice")).connect()
    await good.wait_synced()
    await good.edit(lambda d: add_track(d, "video", "V", track_id="t1"))
    live = server.services.rooms.get(pid)
    assert live is not None
    await eventually(lambda: bool(read_timeline(live.room.doc).tracks))
    before = read_timeline(live.room.doc).to_json()
    assert await _close_code(server.ws_url(pid, "alice"), frame) == CloseCode.MALFORMED
    assert read_timeline(live.room.doc).to_json() == before
    # The other client is unaffected and still syncs.
    await good.edit(lambda d: add_track(d, "audio", "A", track_id="t2"))
    other = await YClient(server.ws_url(pid, "alice")).connect()
    await other.wait_synced()
    await eventually(lambda: len(read_timeline(other.doc).tracks) == 2)
    assert good.close_code is None
    await good.close()
    await other.close()


async def test_text_frame_closes_4400(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    assert await _close_code(server.ws_url(pid, "alice"), "hello") == CloseCode.MALFORMED


async def test_message_too_big_closes_4413(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, message_bytes_max=4096)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        big = encode_update(b"\x00" * 10_000)
        assert await _close_code(server.ws_url(pid, "alice"), big) == CloseCode.MESSAGE_TOO_BIG


async def test_flooding_client_is_closed_4529(tmp_path: Path, database_url: str) -> None:
    # Slowed at first (see test_ws_throttle.py), closed once over the limit for 0.5 s.
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        conn_messages_per_s=5,
        conn_messages_burst=10,
        conn_throttle_close_s=0.5,
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        frames = [encode_sync_step1(b"\x00")] * 50
        assert await _close_code(server.ws_url(pid, "alice"), *frames) == CloseCode.RATE_LIMITED


async def test_slow_consumer_is_closed_and_others_unaffected(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, send_queue_bytes_max=64 * 1024)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        # max_queue=1 and no reads: the client stops draining its socket.
        slow = await websockets.connect(server.ws_url(pid, "alice"), max_queue=1, max_size=None)
        fast = await YClient(server.ws_url(pid, "alice")).connect()
        await fast.wait_synced()
        live = server.services.rooms.get(pid)
        assert live is not None and len(live.peers) == 2
        blob = "x" * 20_000
        for i in range(400):
            await fast.edit(lambda d, i=i: d.get("assets", type=Map).__setitem__(f"a{i}", blob))
            if len(live.peers) == 1:
                break
        await eventually(lambda: len(live.peers) == 1, timeout=20)
        assert fast.close_code is None
        # Once the slow client reads again it finds the close code after its backlog.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(20):
                while True:
                    await slow.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.TRY_AGAIN_LATER
        await fast.close()


async def test_viewer_receives_but_cannot_edit(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.add_member("alice", pid, "victor", "viewer")
    owner = await YClient(server.ws_url(pid, "alice")).connect()
    viewer = await YClient(server.ws_url(pid, "victor")).connect()
    await owner.wait_synced()
    await viewer.wait_synced()
    await viewer.edit(lambda d: add_track(d, "video", "sneaky", track_id="v1"))
    await viewer.edit(lambda d: add_track(d, "video", "sneaky2", track_id="v2"))
    await eventually(lambda: len(viewer.denied) == 1)
    assert "read-only" in viewer.denied[0]
    # Viewers still receive edits and may share presence.
    await owner.edit(lambda d: add_track(d, "audio", "A", track_id="t1"))
    await eventually(lambda: any(t.id == "t1" for t in read_timeline(viewer.doc).tracks))
    await viewer.set_awareness(42, 1, '{"user":"victor"}')
    await eventually(lambda: 42 in owner.awareness)
    live = server.services.rooms.get(pid)
    assert live is not None
    ids = {t.id for t in read_timeline(live.room.doc).tracks}
    assert ids == {"t1"}
    assert {t.id for t in read_timeline(owner.doc).tracks} == {"t1"}
    assert len(viewer.denied) == 1  # told once
    await owner.close()
    await viewer.close()


async def test_role_changes_apply_to_open_connections(server: RunningServer) -> None:
    pid = await server.create_project("alice")
    await server.add_member("alice", pid, "ed", "editor")
    await server.add_member("alice", pid, "eve", "editor")
    ed = await YClient(server.ws_url(pid, "ed")).connect()
    eve = await YClient(server.ws_url(pid, "eve")).connect()
    await ed.wait_synced()
    await eve.wait_synced()
    await server.add_member("alice", pid, "ed", "viewer")
    await ed.edit(lambda d: add_track(d, "video", "after-demotion", track_id="x"))
    await eventually(lambda: len(ed.denied) == 1)
    async with server.client("alice") as http:
        response = await http.delete(f"/api/projects/{pid}/members/eve")
        assert response.status_code == 204
    assert await eve.wait_closed() == CloseCode.NOT_A_MEMBER
    live = server.services.rooms.get(pid)
    assert live is not None
    assert not read_timeline(live.room.doc).tracks
    await ed.close()


async def test_joins_of_a_live_room_follow_member_changes_at_once(server: RunningServer) -> None:
    """A live room answers joins from its member list; every change reaches it."""
    pid = await server.create_project("alice")
    owner = await YClient(server.ws_url(pid, "alice")).connect()
    await owner.wait_synced()
    assert await server.services.rooms.member(pid, "bob") == (False, False)
    assert await _close_code(server.ws_url(pid, "bob")) == CloseCode.NOT_A_MEMBER

    await server.add_member("alice", pid, "bob", "viewer")
    bob = await YClient(server.ws_url(pid, "bob")).connect()
    await bob.wait_synced()
    await bob.edit(lambda d: add_track(d, "video", "nope", track_id="n"))
    await eventually(lambda: len(bob.denied) == 1)  # joined read-only
    await bob.close()

    await server.add_member("alice", pid, "bob", "editor")
    bob = await YClient(server.ws_url(pid, "bob")).connect()
    await bob.edit(lambda d: add_track(d, "video", "yes", track_id="y"))
    await eventually(lambda: any(t.id == "y" for t in read_timeline(owner.doc).tracks))
    await bob.close()

    async with server.client("alice") as http:
        response = await http.delete(f"/api/projects/{pid}/members/bob")
        assert response.status_code == 204
    assert server.services.rooms.get(pid) is not None  # still live: the list answered
    assert await _close_code(server.ws_url(pid, "bob")) == CloseCode.NOT_A_MEMBER
    await owner.close()


async def test_shutdown_closes_1012_after_flushing(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, group_commit_ms=500)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        client = await YClient(server.ws_url(pid, "alice")).connect()
        await client.wait_synced()
        await client.edit(lambda d: add_track(d, "video", "last-edit", track_id="t9"))
        await eventually(
            lambda: bool(read_timeline(server.services.rooms.get(pid).room.doc).tracks)
        )  # type: ignore[union-attr]
        server.server.should_exit = True
        assert await client.wait_closed() == CloseCode.SERVER_RESTARTING
    # The edit was inside the 500 ms group-commit window at shutdown, and still stored.
    async with run_server(settings) as again:
        reader = await YClient(again.ws_url(pid, "alice")).connect()
        await reader.wait_synced()
        assert [t.id for t in read_timeline(reader.doc).tracks] == ["t9"]
        await reader.close()


async def test_too_many_connections_per_user_4529(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, user_connections_max=3)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        clients = [await YClient(server.ws_url(pid, "alice")).connect() for _ in range(3)]
        for c in clients:
            await c.wait_synced()
        assert await _close_code(server.ws_url(pid, "alice")) == CloseCode.RATE_LIMITED
        await clients[0].close()
        await eventually(lambda: server.services.idle.per_user.get("alice") == 2)
        again = await YClient(server.ws_url(pid, "alice")).connect()
        await again.wait_synced()
        for c in [*clients[1:], again]:
            await c.close()


async def test_document_size_limit_reaches_the_client(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, doc_bytes_max=20_000)
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        client = await YClient(server.ws_url(pid, "alice")).connect()
        await client.wait_synced()
        for i in range(5):
            await client.edit(
                lambda d, i=i: d.get("assets", type=Map).__setitem__(f"a{i}", "z" * 6000)
            )
        await eventually(lambda: len(client.denied) == 1)
        assert "size limit" in client.denied[0]
        live = server.services.rooms.get(pid)
        assert live is not None
        assert 1 <= len(live.room.doc.get("assets", type=Map)) < 5
        assert client.close_code is None
        await client.close()


async def test_json_body_limit_413(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, http_body_bytes_max=1000)
    async with run_server(settings) as server:
        async with server.client("alice") as http:
            r = await http.post("/api/projects", json={"title": "x" * 5000})
            assert r.status_code == 413
            assert (await http.post("/api/projects", json={"title": "ok"})).status_code == 201

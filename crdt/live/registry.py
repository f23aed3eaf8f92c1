"""``Rooms``: every live room of this process, loaded on first join and unloaded when unused.

The registry opens rooms (a cold room for its first joiner with one read that answers every
other joiner of a storm), hands them to joins, and keeps rooms loaded for server-side work
(``hold``, ``edit``, ``presence``). Everything that happens inside one room is ``LiveRoom``'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from pycrdt import Doc

from crdt.live.members import NotAMember
from crdt.live.replication import Replicator
from crdt.live.room import LiveRoom
from crdt.live.settings import RoomSettings
from crdt.ports import (
    Clock,
    Disconnect,
    DocumentStore,
    Fanout,
    FirstJoinReader,
    Membership,
    Peer,
    RemoteAccess,
    RoomHooks,
    RoomMetrics,
)
from crdt.protocol import encode_update

__all__ = ["LiveRoom", "NotAMember", "RoomSettings", "Rooms"]

log = logging.getLogger(__name__)


class Rooms:
    def __init__(
        self,
        store: DocumentStore,
        settings: RoomSettings | None = None,
        hooks: RoomHooks | None = None,
        fanout: Fanout | None = None,
        metrics: RoomMetrics | None = None,
        *,
        membership: Membership | None = None,
        first_join: FirstJoinReader | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._settings = settings or RoomSettings()
        self._hooks = hooks
        self.fanout = fanout
        # Who may join: rooms keep their project's member list while live (without it every
        # join is checked by the caller).
        self.membership = membership
        # Reads a cold room's member list and document in one go for its first joiner.
        self.first_join = first_join
        self._clock = clock
        self._rooms: dict[str, LiveRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, doc_id: str) -> LiveRoom | None:
        live = self._rooms.get(doc_id)
        return live if live is not None and not live.closing else None

    def live_now(self, doc_id: str) -> LiveRoom | None:
        """The room if it is loaded and open, for joins that wait for nothing."""
        live = self._rooms.get(doc_id)
        # A room whose load failed is no longer registered, so a done load here succeeded.
        if live is None or live.closing or not live.ready.done():
            return None
        return live

    # -- opening -------------------------------------------------------------------------

    async def _open(self, doc_id: str) -> LiveRoom:
        while True:
            live = self._rooms.get(doc_id)
            if live is None:
                break
            if live.closing:
                await live.closed.wait()
                continue
            try:
                await asyncio.shield(live.ready)
            except NotAMember:
                continue  # opened for someone who may not join; this join opens it anew
            return live
        live = self._new_room(doc_id)
        await self._load(live)
        return live

    def _new_room(self, doc_id: str) -> LiveRoom:
        live = LiveRoom(
            doc_id,
            self._store,
            self._settings,
            self._hooks,
            self._metrics,
            self.membership,
            self.first_join,
            clock=self._clock,
            unused=self._start_unload,
        )
        if self.fanout is not None:
            live.replicator = Replicator(
                live,
                self.fanout,
                confirm_timeout_s=self._settings.confirm_timeout_ms / 1000,
                clock=self._clock,
            )
        self._rooms[doc_id] = live
        return live

    async def _load(self, live: LiveRoom, *, first_joiner: str | None = None) -> None:
        try:
            await live.open(first_joiner=first_joiner)
        except BaseException:
            if self._rooms.get(live.doc_id) is live:
                del self._rooms[live.doc_id]
            raise

    def _open_for(self, doc_id: str, user_id: str) -> LiveRoom:
        """Register a cold room and start loading it for its first joiner ``user_id``."""
        live = self._new_room(doc_id)
        self._spawn(self._open_cold(live, user_id), f"open:{doc_id}")
        return live

    async def _open_cold(self, live: LiveRoom, first_joiner: str) -> None:
        try:
            await self._load(live, first_joiner=first_joiner)
        except NotAMember:
            return  # the database tells its joiners which refusal (no such project, not a member)
        except Exception:  # its joiners ask the database, which tells them to retry if it is down
            log.warning("opening a room failed", exc_info=True, extra={"project_id": live.doc_id})
            return
        # Unloaded after the grace period unless a join follows (they may all be refused).
        live.unload_when_unused()

    # -- joins ---------------------------------------------------------------------------

    async def join(
        self, doc_id: str, peer: Peer, *, can_edit: bool, wants_saved: bool = False
    ) -> LiveRoom:
        live = await self._open(doc_id)
        live.join(peer, can_edit=can_edit, wants_saved=wants_saved)
        return live

    def wait_open(
        self, doc_id: str, user_id: str, opened: Callable[[LiveRoom | None], None]
    ) -> bool:
        """Call ``opened`` with the room once it is open (with None if opening it failed),
        opening a cold room for ``user_id`` (see ``member``); False if the room is already
        open, or is closing, or there is no member list to open it with.

        This is how the joins of a storm on a cold room wait: a callback each, called in the
        step that opens the room, instead of a task each. Under a storm a busy event loop runs
        in turns of tens of milliseconds, and each hop through a future and a task costs a
        turn; this way the whole storm is admitted in the turn the room opens.
        """
        live = self._rooms.get(doc_id)
        if live is None:
            if self.membership is None:
                return False
            live = self._open_for(doc_id, user_id)
        elif live.closing or live.ready.done():
            return False
        live.wait_opened(opened)
        return True

    async def member(self, doc_id: str, user_id: str) -> tuple[bool, bool] | None:
        """``(is_member, can_edit)`` for a joiner, from the room's member list; None when not
        known here (the caller asks the database).

        A cold room is opened on the way, for this user (``LiveRoom.open``): in a join storm
        the first joiner's read of the member list (with the document, if it may have it)
        answers every other joiner, who waits for it instead of running a query of its own.
        """
        live = self._rooms.get(doc_id)
        if live is None:
            if self.membership is None:
                return None
            live = self._open_for(doc_id, user_id)
        elif live.closing:
            return None
        if not live.members.known.done():
            await asyncio.shield(live.members.known)
        return live.member(user_id)

    # -- access --------------------------------------------------------------------------

    def set_can_edit(self, doc_id: str, user_id: str, can_edit: bool) -> None:
        """A member's role changed: applies to their open connections on every instance."""
        self._access_changed(doc_id, user_id, can_edit)

    def revoke(self, doc_id: str, user_id: str) -> None:
        """A member was removed: their connections close (4403) on every instance."""
        self._access_changed(doc_id, user_id, None)

    def _access_changed(self, doc_id: str, user_id: str, can_edit: bool | None) -> None:
        live = self.get(doc_id)
        if live is not None:
            live.access_changed(user_id, can_edit)
        if self.fanout is not None:
            self.fanout.publish(doc_id, RemoteAccess(user_id, can_edit))

    async def project_deleted(self, doc_id: str) -> None:
        """The project is gone: close its connections here (4404) and unload its room."""
        live = self._rooms.get(doc_id)
        if live is None or live.closing:
            return
        for peer in tuple(live.peers):
            peer.close(Disconnect.PROJECT_DELETED)
        await self._unload(live)

    # -- server-side work ----------------------------------------------------------------

    @asynccontextmanager
    async def hold(self, doc_id: str) -> AsyncIterator[LiveRoom]:
        """Keep a room loaded (with or without peers) for server-side work."""
        live = await self._open(doc_id)
        live.hold()
        try:
            yield live
        finally:
            live.release()

    async def edit(
        self, doc_id: str, change: Callable[[Doc[Any]], object], *, origin: str = "server"
    ) -> bytes | None:
        """Apply a server-side change to a document, live: broadcast and persist it."""
        async with self.hold(doc_id) as live:
            update = live.room.edit(change, origin=origin)
            if update is not None:
                live.broadcast(encode_update(update))
                live.accept(update)
                await live.flush()
            return update

    def presence(self, doc_id: str, client_id: int, state: dict[str, Any] | None) -> None:
        """Show ``state`` as the presence of ``client_id`` to the room's collaborators.

        Server-side activity (a job's progress) travels as awareness, which every y-websocket
        client already receives; nothing is written to the document's history. Only a loaded
        room has anyone to tell, so this does nothing for a room that is not live.
        """
        live = self.get(doc_id)
        if live is None:
            return
        live.room.set_presence(client_id, json.dumps(state) if state is not None else None)
        live.awareness_changed()

    # -- unloading -----------------------------------------------------------------------

    def _start_unload(self, live: LiveRoom) -> None:
        self._spawn(self._unload(live), f"unload:{live.doc_id}")

    async def _unload(self, live: LiveRoom) -> None:
        try:
            await live.close()
        finally:
            if self._rooms.get(live.doc_id) is live:
                del self._rooms[live.doc_id]

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, *, flush_timeout_s: float | None = 30.0) -> None:
        """Flush and unload every room (shutdown); a store still unreachable after
        ``flush_timeout_s`` does not hold the shutdown forever."""
        rooms = list(self._rooms.values())
        for live in rooms:
            for peer in tuple(live.peers):
                peer.close(Disconnect.SHUTDOWN)
        await asyncio.gather(
            *(live.close(flush_timeout_s=flush_timeout_s) for live in rooms if not live.closing)
        )
        self._rooms.clear()

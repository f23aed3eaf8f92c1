"""``LiveRoom``: one loaded document in this process, running the pure ``Room`` through ports.

It holds the pure ``crdt.room.Room`` (document, presence) and its peers, and carries out what
the ``Room`` returns: replies and broadcasts go straight into each peer's bounded send queue
(``Peer.send`` never waits), accepted updates into the group commit (``commits``), presence
changes into one coalesced frame per interval. Beside it: its member list (``members``), the
work done once edits settle (``settle``) and, with a fan-out, its ``Replicator``.

Frames are handled synchronously (``receive`` never awaits), so one message is fully applied
and fanned out before the next is looked at; ordering per room is the order of arrival.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from pycrdt import Doc

from crdt.errors import ProtocolError
from crdt.live.commits import Committed, GroupCommit
from crdt.live.members import MemberList, NotAMember
from crdt.live.replication import Replicator
from crdt.live.settings import RoomSettings
from crdt.live.settle import Settler
from crdt.ports import (
    Clock,
    Disconnect,
    DocumentStore,
    FirstJoinReader,
    Membership,
    NoMetrics,
    Peer,
    RoomHooks,
    RoomMetrics,
)
from crdt.protocol import EMPTY_UPDATE, encode_saved, encode_update
from crdt.room import RemoteOrigin, Room

__all__ = ["LiveRoom"]

log = logging.getLogger(__name__)


class LiveRoom:
    def __init__(
        self,
        doc_id: str,
        store: DocumentStore,
        settings: RoomSettings,
        hooks: RoomHooks | None = None,
        metrics: RoomMetrics | None = None,
        membership: Membership | None = None,
        first_join: FirstJoinReader | None = None,
        *,
        clock: Clock | None = None,
        unused: Callable[[LiveRoom], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.doc_id = doc_id
        self._clock = clock or loop.time
        self.metrics: RoomMetrics = metrics or NoMetrics()
        self.members = MemberList(
            doc_id, membership, first_join, ttl_s=settings.members_ttl_ms / 1000, clock=self._clock
        )
        self.room = Room(
            Doc(),
            awareness_state_bytes_max=settings.awareness_state_bytes_max,
            doc_bytes_max=settings.doc_bytes_max,
        )
        self.peers: set[Peer] = set()
        # Peers that asked for "saved" messages (the durable state vector after each commit).
        self.saved_peers: set[Peer] = set()
        self._store = store
        self._settings = settings
        self._commits = GroupCommit(
            doc_id,
            store,
            settings,
            clock=self._clock,
            metrics=self.metrics,
            durable_state=self._durable_state,
            committed=self._committed,
            compacted=self.room.measure,
        )
        self._settler = (
            Settler(doc_id, self.room.doc, hooks, settings, self._clock) if hooks else None
        )
        self.replicator: Replicator | None = None
        # Server-side work keeping the room loaded without peers (``Rooms.hold``).
        self._holds = 0
        # Called once the room has had no peer and no hold for the unload grace period.
        self._unused = unused
        self._awareness_timer: asyncio.TimerHandle | None = None
        self._unload_timer: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        # Joins waiting for this room to open, without a task each (``Rooms.wait_open``).
        self._waiting: list[Callable[[LiveRoom | None], None]] = []
        self.closing = False
        self.closed = asyncio.Event()

    # -- opening -------------------------------------------------------------------------

    async def open(self, *, first_joiner: str | None = None) -> None:
        """Load the room and resolve ``ready``, handing it to every join waiting for it (None
        to each if loading failed, which is raised here too)."""
        try:
            await self._load(first_joiner=first_joiner)
        except BaseException as exc:
            self.ready.set_exception(exc)
            self.ready.exception()  # Mark retrieved: joiners waiting on it get it re-raised.
            self._opened(None)
            raise
        self.ready.set_result(None)
        self._opened(self)

    def wait_opened(self, opened: Callable[[LiveRoom | None], None]) -> None:
        """Call ``opened`` in the step that opens this room (see ``open``)."""
        self._waiting.append(opened)

    async def _load(self, *, first_joiner: str | None = None) -> None:
        """Read the member list and the document.

        For ``first_joiner`` (a join opening a cold room) the document is read only if the
        member list shows that user is a member, so that no one else can make the server read
        a document; otherwise ``NotAMember``. Every joiner of a storm waits for this load, and
        under a storm every round trip, and every hop through another task, costs a turn of a
        busy event loop: with a ``FirstJoinReader`` it is one statement, else two reads in a
        row in this task.
        """
        # Subscribe before reading the stored state, so that no update (and no access change)
        # can fall between them.
        if self.replicator is not None:
            await self.replicator.open()
        try:
            if first_joiner is None:
                updates, _ = await asyncio.gather(
                    self._store.load(self.doc_id), self.members.read()
                )
            else:
                updates = await self._load_for(first_joiner)
        except BaseException:
            self.members.mark_known()
            if self.replicator is not None:
                await self.replicator.close()
            raise
        self.members.mark_known()
        with self.room.doc.transaction(origin="store"):
            for update in updates:
                self.room.doc.apply_update(update)
        self.room.measure()
        self._commits.start()

    async def _load_for(self, first_joiner: str) -> Sequence[bytes]:
        members = self.members
        if members.reads_documents:
            updates = await members.read_for_first_join(first_joiner)
        else:
            await members.read()
            member = members.holds(first_joiner)
            updates = await self._store.load(self.doc_id) if member else None
        if updates is None:
            members.forget()  # this room is dropped: its joiners ask the database
            raise NotAMember(first_joiner)
        members.mark_known()
        return updates

    def _opened(self, live: LiveRoom | None) -> None:
        waiting, self._waiting = self._waiting, []
        for opened in waiting:
            try:
                opened(live)
            except Exception:  # a bug in one join must not keep the room from the others
                log.exception("admitting a waiting join failed", extra={"project_id": self.doc_id})

    async def reload(self) -> None:
        """Catch up from the store after messages from other instances may have been missed."""
        self.members.forget()  # access changes may have been missed too
        updates, _ = await asyncio.gather(self._store.load(self.doc_id), self.members.read())
        before = self.room.doc.get_state()
        with self.room.doc.transaction(origin="store"):
            for update in updates:
                self.room.doc.apply_update(update)
        missing = self.room.doc.get_update(before)
        if missing != EMPTY_UPDATE:
            self.room.version += 1
            self.broadcast(encode_update(missing))

    # -- peers ---------------------------------------------------------------------------

    def join(self, peer: Peer, *, can_edit: bool, wants_saved: bool = False) -> None:
        """Add ``peer`` to the open room: its greeting is queued at once."""
        self._cancel_unload()
        self.peers.add(peer)
        if wants_saved:
            self.saved_peers.add(peer)
        for frame in self.room.connect(peer, can_edit=can_edit):
            self.send(peer, frame)

    def receive(self, peer: Peer, frame: bytes) -> None:
        """Handle one frame; raises ``crdt.errors.ProtocolError`` for bad input."""
        out = self.room.receive(peer, frame)
        for reply in out.replies:
            self.send(peer, reply)
        if out.broadcast is not None:
            self.broadcast(out.broadcast, exclude=peer)
        if out.update is not None:
            self.accept(out.update)
        if out.awareness_dirty:
            self.awareness_changed()
        if out.error is not None:
            raise out.error

    def leave(self, peer: Peer) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        self.saved_peers.discard(peer)
        if self.room.disconnect(peer):
            self.awareness_changed()
        self.unload_when_unused()

    def member(self, user_id: str) -> tuple[bool, bool] | None:
        """``(is_member, can_edit)`` from the member list, or None if unknown here."""
        return self.members.lookup(user_id)

    # -- fan-out -------------------------------------------------------------------------

    def send(self, peer: Peer, frame: bytes) -> None:
        if not peer.send(frame):
            log.info("closing slow consumer", extra={"project_id": self.doc_id})
            self.metrics.slow_consumer()
            peer.close(Disconnect.SLOW_CONSUMER)

    def broadcast(self, frame: bytes, exclude: Peer | None = None) -> None:
        for peer in tuple(self.peers):
            if peer is not exclude:
                self.send(peer, frame)

    def accept(self, update: bytes, *, publish: bool = True) -> None:
        """Queue an accepted update for the next group commit (and other instances)."""
        seq = None
        if publish and self.replicator is not None:
            seq = self.replicator.published(update)
        self._commits.add(seq, update)

    def awareness_changed(self) -> None:
        if self._awareness_timer is None:
            loop = asyncio.get_running_loop()
            delay = self._settings.awareness_coalesce_ms / 1000
            self._awareness_timer = loop.call_later(delay, self._flush_awareness)

    def _flush_awareness(self) -> None:
        self._awareness_timer = None
        frame, ours = self.room.take_awareness()
        if frame is not None:
            self.broadcast(frame)
        if ours is not None and self.replicator is not None:
            self.replicator.awareness(ours)

    # -- events from other instances (``crdt.ports.ReplicaTarget``) ------------------------

    def apply_remote(self, update: bytes) -> None:
        try:
            frame = self.room.apply_remote(update)
        except ProtocolError:
            log.warning("dropping an undecodable update from another instance")
            return
        self.broadcast(frame)

    def remote_awareness(self, origin: str, payload: bytes) -> None:
        try:
            changed = self.room.receive_remote_awareness(RemoteOrigin(origin), payload)
        except ProtocolError:
            log.warning("dropping undecodable presence from another instance")
            return
        if changed:
            self.awareness_changed()

    def origin_gone(self, origin: str) -> None:
        self.room.drop_origin(RemoteOrigin(origin))
        self.awareness_changed()

    def access_changed(self, user_id: str, can_edit: bool | None) -> None:
        self.members.changed(user_id, can_edit)
        for peer in tuple(self.peers):
            if peer.user_id != user_id:
                continue
            self.room.set_can_edit(peer, bool(can_edit))
            if can_edit is None:
                peer.close(Disconnect.REVOKED)

    # -- persistence ---------------------------------------------------------------------

    def _durable_state(self) -> bytes | None:
        return self.room.doc.get_state() if self.saved_peers else None

    def _committed(self, commit: Committed) -> None:
        if commit.seq_max is not None and self.replicator is not None:
            self.replicator.committed(commit.seq_max)
        if commit.durable is not None:
            frame = encode_saved(commit.durable)
            for peer in tuple(self.saved_peers):
                self.send(peer, frame)
        if self._settler is not None:
            self._settler.committed()

    async def flush(self) -> None:
        """Wait until every accepted update is committed."""
        await self._commits.flush()

    # -- lifetime ------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep the room loaded (with or without peers) for server-side work."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        self.unload_when_unused()

    def unload_when_unused(self) -> None:
        """Start the unload grace period if nothing uses the room."""
        if self.peers or self._holds or self.closing or self._unload_timer is not None:
            return
        if self._unused is None:
            return
        self._unload_timer = asyncio.get_running_loop().call_later(
            self._settings.unload_grace_ms / 1000, self._grace_over
        )

    def _grace_over(self) -> None:
        self._unload_timer = None
        if not (self.peers or self._holds or self.closing) and self._unused is not None:
            self._unused(self)

    def _cancel_unload(self) -> None:
        if self._unload_timer is not None:
            self._unload_timer.cancel()
            self._unload_timer = None

    async def close(self, *, flush_timeout_s: float | None = None) -> None:
        """Unload: store everything accepted, then compact. With ``flush_timeout_s`` (server
        shutdown), stop waiting for an unreachable store after that long."""
        self.closing = True
        self.members.close()
        for timer in (self._awareness_timer, self._unload_timer):
            if timer is not None:
                timer.cancel()
        if self._commits.started:
            if self.replicator is not None:
                await self.replicator.close()  # may hand over unconfirmed updates to store
            if not await self._commits.stop(flush_timeout_s=flush_timeout_s):
                # Clients hold these updates too and send them again when they reconnect.
                log.error(
                    "store unreachable at shutdown: %d accepted updates not stored",
                    self._commits.pending,
                    extra={"project_id": self.doc_id},
                )
                if self._settler is not None:
                    self._settler.cancel()
                self.closed.set()
                return
            if self._settler is not None:
                await self._settler.close()  # edits not yet settled are settled now
            try:
                await self._store.unloaded(self.doc_id, self.room.doc.get_update())
            except Exception:
                log.exception("unload compaction failed", extra={"project_id": self.doc_id})
        self.closed.set()

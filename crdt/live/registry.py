"""The async registry of live rooms: runs ``Room`` outputs through the ports.

One ``LiveRoom`` per loaded document in this process. It owns:
- the pure ``Room`` (document, presence);
- its peers, each with a send queue bounded in bytes (``Peer.send`` never waits);
- a persistence task that appends accepted updates to the ``DocumentStore`` in group commits,
  awaiting every write and retrying failures with backoff, updates staying in memory until
  committed (never fire-and-forget);
- an awareness timer that coalesces presence changes into one frame per interval;
- an unload timer started when the last peer leaves.

Frames are handled synchronously (``receive`` never awaits), so one message is fully applied
and fanned out before the next is looked at; ordering per room is the order of arrival.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc

from crdt.errors import ProtocolError
from crdt.live.replication import Replicator
from crdt.ports import (
    Disconnect,
    DocumentStore,
    Fanout,
    FirstJoinReader,
    Membership,
    NoMetrics,
    Peer,
    RemoteAccess,
    RoomHooks,
    RoomMetrics,
)
from crdt.protocol import EMPTY_UPDATE, encode_saved, encode_update
from crdt.room import RemoteOrigin, Room

__all__ = ["LiveRoom", "NotAMember", "RoomSettings", "Rooms"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoomSettings:
    group_commit_ms: int = 50
    awareness_coalesce_ms: int = 50
    unload_grace_ms: int = 10_000
    awareness_state_bytes_max: int = 65_536
    store_retry_ms_max: int = 5_000
    # Compact the stored log once this much was appended since the last compaction.
    compact_updates_max: int = 1_000
    compact_bytes_max: int = 4 * 1024 * 1024
    # Hooks run once edits pause this long, and at least this often while they do not.
    settle_ms: int = 1_000
    settle_ms_max: int = 10_000
    # Edits that would grow a document past this are refused (None: no limit).
    doc_bytes_max: int | None = None
    # Another instance's update not confirmed stored within this time is stored here too.
    confirm_timeout_ms: int = 10_000
    # A live room's member list answers joins for this long before it is read again.
    members_ttl_ms: int = 10_000


class NotAMember(Exception):
    """A cold room was opened for a join by someone its member list does not hold."""


def _apply_member_change(members: dict[str, bool], user_id: str, can_edit: bool | None) -> None:
    if can_edit is None:
        members.pop(user_id, None)
    else:
        members[user_id] = can_edit


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
    ) -> None:
        self.doc_id = doc_id
        # The project's members (user id -> may edit), read with the document and kept
        # current by every access change this room hears (local ones, and other instances'
        # through the fan-out it subscribed to before reading): joins of a live room need no
        # query. None while unknown; read again once older than ``members_ttl_ms``, so that
        # even a change this room never heard of is seen within twice that time.
        self.members: dict[str, bool] | None = None
        self._members_read_at = 0.0
        # Changes heard while each read (by number) runs; only the newest read's result counts.
        self._members_reads = 0
        self._members_changes: dict[int, list[tuple[str, bool | None]]] = {}
        self._membership = membership
        self._first_join = first_join
        self._members_task: asyncio.Task[None] | None = None
        self.metrics: RoomMetrics = metrics or NoMetrics()
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
        self._hooks = hooks
        self._appended_count = 0
        self._appended_bytes = 0
        self._settle_timer: asyncio.TimerHandle | None = None
        self._dirty_since: float | None = None
        self._settling: asyncio.Task[None] | None = None
        # Accepted updates awaiting the next group commit, with their fan-out numbers (None
        # for updates first accepted by another instance and stored here on its behalf).
        self._pending: list[tuple[int | None, bytes]] = []
        self._pending_since: float | None = None  # when the oldest pending update arrived
        self.replicator: Replicator | None = None
        self._pending_event = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is waiting to be stored
        self._idle.set()
        self._holds = 0
        self._awareness_timer: asyncio.TimerHandle | None = None
        self._unload_timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Resolved once the first member-list read is over (``members`` may still be None).
        self.members_known: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Joins waiting for this room to open, without a task each (``Rooms.wait_open``).
        self._waiting: list[Callable[[LiveRoom | None], None]] = []
        self.closing = False
        self.closed = asyncio.Event()

    async def load(self, *, first_joiner: str | None = None) -> None:
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
                    self._store.load(self.doc_id), self.read_members()
                )
            else:
                updates = await self._load_for(first_joiner)
        except BaseException:
            self._members_known()
            if self.replicator is not None:
                await self.replicator.close()
            raise
        self._members_known()
        with self.room.doc.transaction(origin="store"):
            for update in updates:
                self.room.doc.apply_update(update)
        self.room.measure()
        self._writer = asyncio.create_task(self._write_loop(), name=f"store:{self.doc_id}")

    async def reload(self) -> None:
        """Catch up from the store after messages from other instances may have been missed."""
        self.members = None  # access changes may have been missed too
        updates, _ = await asyncio.gather(self._store.load(self.doc_id), self.read_members())
        before = self.room.doc.get_state()
        with self.room.doc.transaction(origin="store"):
            for update in updates:
                self.room.doc.apply_update(update)
        missing = self.room.doc.get_update(before)
        if missing != EMPTY_UPDATE:
            self.room.version += 1
            self.broadcast(encode_update(missing))

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
        if not self._pending:
            self._pending_since = asyncio.get_running_loop().time()
        self._pending.append((seq, update))
        self._idle.clear()
        self._pending_event.set()

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

    # -- events from other instances -----------------------------------------------------

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
        for changes in self._members_changes.values():
            changes.append((user_id, can_edit))
        if self.members is not None:
            _apply_member_change(self.members, user_id, can_edit)
        for peer in tuple(self.peers):
            if peer.user_id != user_id:
                continue
            self.room.set_can_edit(peer, bool(can_edit))
            if can_edit is None:
                peer.close(Disconnect.REVOKED)

    async def _load_for(self, first_joiner: str) -> Sequence[bytes]:
        if self._first_join is not None:
            number, read_at = self._members_read_started()
            try:
                read = await self._first_join.read_first_join(self.doc_id, first_joiner)
            finally:
                changes = self._members_changes.pop(number)
            self._members_read_done(number, read_at, read.members, changes)
            updates = read.updates
        else:
            await self.read_members()
            member = self.members is not None and first_joiner in self.members
            updates = await self._store.load(self.doc_id) if member else None
        if updates is None:
            self.members = None  # this room is dropped: its joiners ask the database
            raise NotAMember(first_joiner)
        self._members_known()
        return updates

    def _opened(self, live: LiveRoom | None) -> None:
        """The load ended: hand the room (None if it failed) to every join waiting for it."""
        waiting, self._waiting = self._waiting, []
        for opened in waiting:
            try:
                opened(live)
            except Exception:  # a bug in one join must not keep the room from the others
                log.exception("admitting a waiting join failed", extra={"project_id": self.doc_id})

    def _members_known(self) -> None:
        if not self.members_known.done():
            self.members_known.set_result(None)

    async def read_members(self) -> None:
        """(Re)read the member list; changes heard while the read runs are applied on top.
        A read that a newer one overtook is dropped (the newer one started after whatever
        made it necessary, such as a gap in the fan-out)."""
        if self._membership is None:
            return
        number, read_at = self._members_read_started()
        try:
            members = await self._membership.members(self.doc_id)
        except Exception:  # joins fall back to a query each
            log.warning("reading members failed", exc_info=True, extra={"project_id": self.doc_id})
            members = None
        finally:
            changes = self._members_changes.pop(number)
        self._members_read_done(number, read_at, members, changes)

    def _members_read_started(self) -> tuple[int, float]:
        self._members_reads += 1
        self._members_changes[self._members_reads] = []
        return self._members_reads, asyncio.get_running_loop().time()

    def _members_read_done(
        self,
        number: int,
        read_at: float,
        members: dict[str, bool] | None,
        changes: list[tuple[str, bool | None]],
    ) -> None:
        if number != self._members_reads:
            return
        if members is not None:
            for user_id, can_edit in changes:
                _apply_member_change(members, user_id, can_edit)
        self.members, self._members_read_at = members, read_at

    def member(self, user_id: str) -> tuple[bool, bool] | None:
        """``(is_member, can_edit)``, or None if unknown here. A list older than
        ``members_ttl_ms`` is read again; it keeps answering while that read runs, up to
        twice that age."""
        members = self.members
        if members is None:
            return None
        ttl_s = self._settings.members_ttl_ms / 1000
        age_s = asyncio.get_running_loop().time() - self._members_read_at
        if age_s > ttl_s and (self._members_task is None or self._members_task.done()):
            self._members_task = asyncio.create_task(self.read_members())
        if age_s > 2 * ttl_s:
            return None
        can_edit = members.get(user_id)
        return (False, False) if can_edit is None else (True, can_edit)

    # -- persistence ---------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._pending_event.wait()
            # Gather what arrives within the window into one commit (group commit).
            await asyncio.sleep(self._settings.group_commit_ms / 1000)
            self._pending_event.clear()
            batch, self._pending = self._pending, []
            since, self._pending_since = self._pending_since, None
            # Everything in the doc now is in this batch or was stored before it.
            durable = self.room.doc.get_state() if self.saved_peers else None
            await self._store_with_retry([update for _, update in batch])
            if not self._pending:
                self._idle.set()
            loop_time = asyncio.get_running_loop().time()
            self.metrics.committed(len(batch), loop_time - since if since is not None else 0.0)
            seqs = [seq for seq, _ in batch if seq is not None]
            if seqs and self.replicator is not None:
                self.replicator.committed(max(seqs))
            if durable is not None:
                frame = encode_saved(durable)
                for peer in tuple(self.saved_peers):
                    self.send(peer, frame)
            self._appended_count += len(batch)
            self._appended_bytes += sum(len(u) for _, u in batch)
            if (
                self._appended_count >= self._settings.compact_updates_max
                or self._appended_bytes >= self._settings.compact_bytes_max
            ):
                await self._compact()
            self._committed()

    async def _compact(self) -> None:
        try:
            await self._store.compact(self.doc_id)
            self.metrics.compacted(True)
            self.room.measure()
        except Exception:
            # The log stays as it was; compaction is retried at the next threshold.
            log.exception("compaction failed", extra={"project_id": self.doc_id})
            self.metrics.compacted(False)
        self._appended_count = self._appended_bytes = 0

    # -- settling (projection, automatic versions) ----------------------------------------

    def _committed(self) -> None:
        if self._hooks is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._dirty_since is None:
            self._dirty_since = now
        deadline = min(
            now + self._settings.settle_ms / 1000,
            self._dirty_since + self._settings.settle_ms_max / 1000,
        )
        if self._settle_timer is not None:
            self._settle_timer.cancel()
        self._settle_timer = loop.call_at(deadline, self._start_settle)

    def _start_settle(self) -> None:
        self._settle_timer = None
        self._dirty_since = None
        previous = self._settling
        self._settling = asyncio.create_task(self._settle(previous), name=f"settle:{self.doc_id}")

    async def _settle(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        assert self._hooks is not None
        try:
            await self._hooks.settled(self.doc_id, self.room.doc)
        except Exception:
            log.exception("post-edit work failed", extra={"project_id": self.doc_id})

    async def _store_with_retry(self, batch: list[bytes]) -> None:
        delay = 0.05
        while True:
            try:
                await self._store.append(self.doc_id, batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # Keep the batch and try again: an accepted update is never dropped.
                log.exception("storing updates failed; retrying", extra={"project_id": self.doc_id})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.store_retry_ms_max / 1000)

    async def flush(self) -> None:
        """Wait until every accepted update is committed."""
        await self._idle.wait()

    async def close(self, *, flush_timeout_s: float | None = None) -> None:
        """Unload: store everything accepted, then compact. With ``flush_timeout_s`` (server
        shutdown), stop waiting for an unreachable store after that long."""
        self.closing = True
        self.members = None
        if self._members_task is not None:
            self._members_task.cancel()
        for timer in (self._awareness_timer, self._unload_timer):
            if timer is not None:
                timer.cancel()
        if self.replicator is not None and self._writer is not None:
            await self.replicator.close()  # may hand over unconfirmed updates to store
        if self._writer is not None:
            try:
                await asyncio.wait_for(self.flush(), flush_timeout_s)
            except TimeoutError:
                # Clients hold these updates too and send them again when they reconnect.
                log.error(
                    "store unreachable at shutdown: %d accepted updates not stored",
                    len(self._pending),
                    extra={"project_id": self.doc_id},
                )
                self._writer.cancel()
                self.closed.set()
                return
            self._writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._writer
            if self._settle_timer is not None:
                self._settle_timer.cancel()
                self._start_settle()  # Edits not yet settled are settled now.
            if self._settling is not None:
                await asyncio.gather(self._settling, return_exceptions=True)
            try:
                await self._store.unloaded(self.doc_id, self.room.doc.get_update())
            except Exception:
                log.exception("unload compaction failed", extra={"project_id": self.doc_id})
        self.closed.set()


class Rooms:
    """Every live room of this process, loaded on first join and unloaded when idle."""

    def __init__(
        self,
        store: DocumentStore,
        settings: RoomSettings | None = None,
        hooks: RoomHooks | None = None,
        fanout: Fanout | None = None,
        metrics: RoomMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._settings = settings or RoomSettings()
        self._hooks = hooks
        self.fanout = fanout
        self._rooms: dict[str, LiveRoom] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Who may join; rooms keep their project's member list while live (set by the
        # composition root; without it every join is checked by the caller).
        self.membership: Membership | None = None
        # Reads a cold room's member list and document in one go for its first joiner.
        self.first_join: FirstJoinReader | None = None

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, doc_id: str) -> LiveRoom | None:
        live = self._rooms.get(doc_id)
        return live if live is not None and not live.closing else None

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
        )
        if self.fanout is not None:
            live.replicator = Replicator(
                live, self.fanout, confirm_timeout_s=self._settings.confirm_timeout_ms / 1000
            )
        self._rooms[doc_id] = live
        return live

    async def _load(self, live: LiveRoom, *, first_joiner: str | None = None) -> None:
        try:
            await live.load(first_joiner=first_joiner)
        except BaseException as exc:
            if self._rooms.get(live.doc_id) is live:
                del self._rooms[live.doc_id]
            live.ready.set_exception(exc)
            live.ready.exception()  # Mark retrieved: joiners waiting on it get it re-raised.
            live._opened(None)
            raise
        live.ready.set_result(None)
        live._opened(live)

    async def join(
        self, doc_id: str, peer: Peer, *, can_edit: bool, wants_saved: bool = False
    ) -> LiveRoom:
        live = await self._open(doc_id)
        self.join_live(live, peer, can_edit=can_edit, wants_saved=wants_saved)
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
        live._waiting.append(opened)
        return True

    def live_now(self, doc_id: str) -> LiveRoom | None:
        """The room if it is loaded and open, for joins that wait for nothing."""
        live = self._rooms.get(doc_id)
        # A room whose load failed is no longer registered, so a done load here succeeded.
        if live is None or live.closing or not live.ready.done():
            return None
        return live

    def join_live(
        self, live: LiveRoom, peer: Peer, *, can_edit: bool, wants_saved: bool = False
    ) -> None:
        """``join`` a room from ``live_now`` (or ``_open``): the greeting is queued at once."""
        if live._unload_timer is not None:
            live._unload_timer.cancel()
            live._unload_timer = None
        live.peers.add(peer)
        if wants_saved:
            live.saved_peers.add(peer)
        for frame in live.room.connect(peer, can_edit=can_edit):
            live.send(peer, frame)

    def receive(self, live: LiveRoom, peer: Peer, frame: bytes) -> None:
        """Handle one frame; raises ``crdt.errors.ProtocolError`` for bad input."""
        out = live.room.receive(peer, frame)
        for reply in out.replies:
            live.send(peer, reply)
        if out.broadcast is not None:
            live.broadcast(out.broadcast, exclude=peer)
        if out.update is not None:
            live.accept(out.update)
        if out.awareness_dirty:
            live.awareness_changed()
        if out.error is not None:
            raise out.error

    def leave(self, live: LiveRoom, peer: Peer) -> None:
        if peer not in live.peers:
            return
        live.peers.discard(peer)
        live.saved_peers.discard(peer)
        removal = live.room.disconnect(peer)
        if removal is not None:
            live.broadcast(removal)
        self._maybe_schedule_unload(live)

    def _maybe_schedule_unload(self, live: LiveRoom) -> None:
        if live.peers or live._holds or live.closing or live._unload_timer is not None:
            return
        loop = asyncio.get_running_loop()
        live._unload_timer = loop.call_later(
            self._settings.unload_grace_ms / 1000, self._start_unload, live
        )

    def _start_unload(self, live: LiveRoom) -> None:
        task = asyncio.create_task(self._unload(live), name=f"unload:{live.doc_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unload(self, live: LiveRoom) -> None:
        live._unload_timer = None
        if live.peers or live._holds or live.closing:
            return
        try:
            await live.close()
        finally:
            self._rooms.pop(live.doc_id, None)

    async def member(self, doc_id: str, user_id: str) -> tuple[bool, bool] | None:
        """``(is_member, can_edit)`` for a joiner, from the room's member list; None when not
        known here (the caller asks the database).

        A cold room is opened on the way, for this user (``LiveRoom.load``): in a join storm
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
        if not live.members_known.done():
            await asyncio.shield(live.members_known)
        return live.member(user_id)

    def _open_for(self, doc_id: str, user_id: str) -> LiveRoom:
        """Register a cold room and start loading it for its first joiner ``user_id``."""
        live = self._new_room(doc_id)
        task = asyncio.create_task(self._open_cold(live, user_id), name=f"open:{doc_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
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
        self._maybe_schedule_unload(live)

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

    @asynccontextmanager
    async def hold(self, doc_id: str) -> AsyncIterator[LiveRoom]:
        """Keep a room loaded (with or without peers) for server-side work."""
        live = await self._open(doc_id)
        live._holds += 1
        try:
            yield live
        finally:
            live._holds -= 1
            self._maybe_schedule_unload(live)

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

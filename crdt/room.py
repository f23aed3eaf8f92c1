"""One shared document and the protocol state around it, as a pure state machine.

``Room`` takes decoded frames from connections and returns what to do: replies for the sender,
a frame for every other connection, an update to persist. It never awaits, sends or stores
anything itself; ``crdt.live`` carries its outputs out. Keeping it pure lets the tests
drive it with plain bytes.

Invariants:
- ``doc`` changes only through ``receive`` (editors' updates), ``apply_remote`` and ``edit``;
  a frame that fails to decode or apply raises ``ProtocolError`` before the doc is touched
  (pycrdt decodes a whole update before it integrates any of it).
- Updates from read-only connections are never applied or forwarded.
- Awareness entries are remembered per connection so they can be removed when it leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from crdt.errors import ProtocolError
from crdt.protocol import (
    EMPTY_STATE_VECTOR,
    EMPTY_UPDATE,
    AuthDenied,
    AwarenessEntry,
    AwarenessUpdate,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_awareness,
    decode_message,
    encode_auth_denied,
    encode_awareness,
    encode_awareness_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
)

__all__ = ["READ_ONLY_REASON", "TOO_LARGE_REASON", "Output", "RemoteOrigin", "Room"]

READ_ONLY_REASON = "read-only: your role on this project does not allow edits"
TOO_LARGE_REASON = "document size limit reached: this edit was not applied"

ConnId = object


@dataclass(frozen=True, slots=True)
class Output:
    """What one incoming frame asks the I/O shell to do."""

    replies: tuple[bytes, ...] = ()
    # Frame for every other connection of the room (same bytes for all: encoded once).
    broadcast: bytes | None = None
    # A document update the room accepted: persist it and share it with other instances.
    update: bytes | None = None
    # Awareness changed: the shell should schedule ``take_awareness`` soon.
    awareness_dirty: bool = False
    # Raise this after carrying out the rest (the sender is closed): an update that failed
    # part-way, whose integrated part is in ``broadcast`` and ``update`` like any edit.
    error: ProtocolError | None = None


@dataclass(frozen=True, slots=True)
class RemoteOrigin:
    """Presence relayed from another server instance owns its entries under this key."""

    instance_id: str


@dataclass(slots=True)
class _Conn:
    can_edit: bool
    told_read_only: bool = False
    told_too_large: bool = False
    awareness_ids: set[int] = field(default_factory=set)


class Room:
    def __init__(
        self,
        doc: Doc[Any] | None = None,
        *,
        awareness_state_bytes_max: int = 65536,
        doc_bytes_max: int | None = None,
    ) -> None:
        self.doc = doc if doc is not None else Doc()
        # An upper bound of the encoded document's size: measured at load and compaction,
        # plus every update applied since (updates that overwrite count in full).
        self.size_bytes = 0
        self._doc_bytes_max = doc_bytes_max
        self._conns: dict[ConnId, _Conn] = {}
        self._awareness: dict[int, AwarenessEntry] = {}
        # A reconnecting client reuses its awareness id on a new connection before the old
        # one is gone; only the latest owner's departure removes the presence.
        self._awareness_owner: dict[int, ConnId] = {}
        self._awareness_dirty: set[int] = set()
        self._awareness_state_bytes_max = awareness_state_bytes_max
        # Bumped on every applied update; keys the frames cached for joiners (our step 1, and
        # the full state as step 2): a join storm encodes each once per document version.
        self.version = 0
        self._step1: tuple[int, bytes] | None = None
        self._full_state: tuple[int, bytes] | None = None

    def measure(self) -> int:
        """Re-measure the document's encoded size (an encode: call it rarely)."""
        self.size_bytes = len(self.doc.get_update())
        return self.size_bytes

    # -- connections ---------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def connect(self, conn: ConnId, *, can_edit: bool) -> list[bytes]:
        """Register ``conn``; returns the greeting: our step 1 and the known presence."""
        self._conns[conn] = _Conn(can_edit=can_edit)
        if self._step1 is None or self._step1[0] != self.version:
            self._step1 = (self.version, encode_sync_step1(self.doc.get_state()))
        greeting = [self._step1[1]]
        present = [e for e in self._awareness.values() if not e.removed]
        if present:
            greeting.append(encode_awareness_message(present))
        return greeting

    def set_can_edit(self, conn: ConnId, can_edit: bool) -> None:
        state = self._conns[conn]
        state.can_edit = can_edit
        state.told_read_only = False

    def disconnect(self, conn: ConnId) -> bool:
        """Forget ``conn``; True if its presence is withdrawn, which goes out with the next
        ``take_awareness`` (to local connections and, relayed, to other instances).

        A y-websocket client that leaves on purpose sends its own removal and then closes; when
        the close comes within the coalescing interval, that removal is still pending here and
        is sent as it is."""
        state = self._conns.pop(conn, None)
        if state is None or not state.awareness_ids:
            return False
        withdrawn = False
        for client_id in state.awareness_ids:
            if self._awareness_owner.get(client_id) != conn:
                continue
            entry = self._awareness.get(client_id)
            if entry is None:
                continue
            if not entry.removed:
                self._awareness[client_id] = AwarenessEntry(client_id, entry.clock + 1, "null")
                self._awareness_dirty.add(client_id)
            withdrawn = withdrawn or client_id in self._awareness_dirty
        return withdrawn

    # -- frames --------------------------------------------------------------------------

    def receive(self, conn: ConnId, frame: bytes) -> Output:
        """Handle one frame from ``conn``. Raises ``ProtocolError`` for bad input."""
        message = decode_message(frame)
        if isinstance(message, SyncUpdate):
            return self._receive_update(conn, message.update, frame)
        if isinstance(message, SyncStep2):
            return self._receive_update(conn, message.update, None)
        if isinstance(message, SyncStep1):
            return Output(replies=(self._step2_for(message.state_vector),))
        if isinstance(message, AwarenessUpdate):
            return Output(awareness_dirty=self._receive_awareness(conn, message.payload))
        if isinstance(message, QueryAwareness):
            present = [e for e in self._awareness.values() if not e.removed]
            return Output(replies=(encode_awareness_message(present),))
        assert isinstance(message, AuthDenied | Saved)
        return Output()  # Server-to-client messages; harmless if a client echoes them.

    def _receive_update(self, conn: ConnId, update: bytes, frame: bytes | None) -> Output:
        state = self._conns[conn]
        if update == EMPTY_UPDATE:
            return Output()
        if not state.can_edit:
            if state.told_read_only:
                return Output()
            state.told_read_only = True
            return Output(replies=(encode_auth_denied(READ_ONLY_REASON),))
        if self._doc_bytes_max is not None and self.size_bytes + len(update) > self._doc_bytes_max:
            if state.told_too_large:
                return Output()
            state.told_too_large = True
            return Output(replies=(encode_auth_denied(TOO_LARGE_REASON),))
        before = self.doc.get_state()
        try:
            self._apply(update)
        except ProtocolError as exc:
            # pycrdt integrates an update client by client: when a later part fails, the
            # earlier parts are already in the document. They cannot be taken back, so they
            # go out and are stored like any edit (every replica agrees), and the sender is
            # still refused.
            if self.doc.get_state() == before:
                raise
            self.version += 1
            partial = self.doc.get_update(before)
            return Output(broadcast=encode_update(partial), update=partial, error=exc)
        # An update frame is forwarded as received; a step 2 is re-framed as an update
        # because it would tell the other clients they are synced.
        return Output(broadcast=frame or encode_update(update), update=update)

    def _apply(self, update: bytes) -> None:
        try:
            self.doc.apply_update(update)
        except (ValueError, RuntimeError) as exc:  # RuntimeError: decodes, does not integrate
            raise ProtocolError(f"update does not decode: {exc}") from exc
        self.version += 1
        self.size_bytes += len(update)

    def _step2_for(self, state_vector: bytes) -> bytes:
        if state_vector == EMPTY_STATE_VECTOR:
            # Join storms: every new client asks for everything; encode that once per version.
            if self._full_state is None or self._full_state[0] != self.version:
                self._full_state = (self.version, encode_sync_step2(self.doc.get_update()))
            return self._full_state[1]
        try:
            return encode_sync_step2(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise ProtocolError(f"state vector does not decode: {exc}") from exc

    def _receive_awareness(self, conn: ConnId, payload: bytes) -> bool:
        entries = decode_awareness(payload, state_bytes_max=self._awareness_state_bytes_max)
        return self._merge_awareness(conn, entries, self._conns[conn].awareness_ids)

    def _merge_awareness(
        self, owner: ConnId, entries: list[AwarenessEntry], owned: set[int] | None
    ) -> bool:
        changed = False
        for entry in entries:
            current = self._awareness.get(entry.client_id)
            # The y-protocols rule: a higher clock wins; at an equal clock only a removal does.
            if current is not None and not (
                current.clock < entry.clock
                or (current.clock == entry.clock and entry.removed and not current.removed)
            ):
                continue
            self._awareness[entry.client_id] = entry
            self._awareness_dirty.add(entry.client_id)
            self._awareness_owner[entry.client_id] = owner
            if owned is not None:
                owned.add(entry.client_id)
            changed = True
        return changed

    def receive_remote_awareness(self, origin: RemoteOrigin, payload: bytes) -> bool:
        """Merge presence relayed from another instance; raises ``ProtocolError`` if bad."""
        entries = decode_awareness(payload, state_bytes_max=self._awareness_state_bytes_max)
        return self._merge_awareness(origin, entries, None)

    def drop_origin(self, origin: RemoteOrigin) -> None:
        """Withdraw every presence entry relayed from ``origin`` (an instance that died)."""
        for client_id, owner in list(self._awareness_owner.items()):
            if owner == origin:
                entry = self._awareness[client_id]
                if not entry.removed:
                    self._awareness[client_id] = AwarenessEntry(client_id, entry.clock + 1, "null")
                    self._awareness_dirty.add(client_id)

    def take_awareness(self) -> tuple[bytes | None, bytes | None]:
        """The coalesced awareness changes since the last call: a frame for every local
        connection, and the payload of the changes that originate here (to relay to other
        instances; presence relayed from them is never sent back)."""
        if not self._awareness_dirty:
            return None, None
        entries = [self._awareness[c] for c in sorted(self._awareness_dirty)]
        ours = [
            e
            for e in entries
            if not isinstance(self._awareness_owner.get(e.client_id), RemoteOrigin)
        ]
        self._awareness_dirty.clear()
        for entry in entries:
            if entry.removed:
                # Keep no state for clients that left; their clock no longer matters to us.
                self._awareness.pop(entry.client_id, None)
                self._awareness_owner.pop(entry.client_id, None)
        return encode_awareness_message(entries), encode_awareness(ours) if ours else None

    def set_presence(self, client_id: int, state_json: str | None) -> None:
        """Publish (or, with None, withdraw) a presence entry owned by the server itself,
        such as a job's progress; it goes out with the next ``take_awareness``."""
        current = self._awareness.get(client_id)
        clock = current.clock + 1 if current is not None else 1
        self._awareness[client_id] = AwarenessEntry(client_id, clock, state_json or "null")
        self._awareness_dirty.add(client_id)

    # -- server-side changes -------------------------------------------------------------

    def apply_remote(self, update: bytes) -> bytes:
        """Apply an update from elsewhere (another instance, the store); returns its frame."""
        self._apply(update)
        return encode_update(update)

    def edit(self, change: Callable[[Doc[Any]], object], *, origin: str = "server") -> bytes | None:
        """Run ``change`` on the doc in one transaction; returns the resulting update."""
        emitted: list[bytes] = []
        # The transaction's own update carries only its own deletions, where
        # ``get_update(state_before)`` would repeat the document's whole delete set.
        subscription = self.doc.observe(lambda event: emitted.append(event.update))
        try:
            with self.doc.transaction(origin=origin):
                change(self.doc)
        finally:
            self.doc.unobserve(subscription)
        if not emitted or emitted[0] == EMPTY_UPDATE:
            return None
        self.version += 1
        return emitted[0]

"""What the room registry needs from the outside world, as small Protocols.

``persistence`` implements ``DocumentStore`` on PostgreSQL; ``persistence.memory`` has the
in-memory twin used by unit tests and by the embedded mode before a database is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from pycrdt import Doc


class Disconnect(Enum):
    """Why the registry closes a connection; the server maps these to close codes."""

    SLOW_CONSUMER = "slow_consumer"
    MALFORMED = "malformed"
    REVOKED = "revoked"
    SHUTDOWN = "shutdown"
    PROJECT_DELETED = "project_deleted"


class Peer(Protocol):
    """One client connection as the registry sees it. ``send`` never waits."""

    @property
    def user_id(self) -> str: ...

    def send(self, frame: bytes) -> bool:
        """Queue ``frame``; False when the connection's bounded queue would overflow."""
        ...

    def close(self, reason: Disconnect) -> None:
        """Ask the connection to close; it leaves the room through ``LiveRoom.leave``."""
        ...


# Monotonic seconds (the event loop's clock by default); injected so tests can move time.
Clock = Callable[[], float]


class Membership(Protocol):
    """Who belongs to a document's project, read when its room loads (see ``LiveRoom``)."""

    async def members(self, doc_id: str) -> dict[str, bool] | None:
        """Every member and whether they may edit; None when there are too many to keep."""
        ...


@dataclass(frozen=True, slots=True)
class FirstJoin:
    """What opening a cold room for its first joiner reads (``FirstJoinReader``)."""

    # As ``Membership.members``: None when there are too many to keep.
    members: dict[str, bool] | None
    # As ``DocumentStore.load``; None when the joiner is not a member (nothing of it was read).
    updates: Sequence[bytes] | None


class FirstJoinReader(Protocol):
    """Reads a room's member list and document together, for the join that opens it."""

    async def read_first_join(self, doc_id: str, user_id: str) -> FirstJoin:
        """The member list and, only if ``user_id`` is a member, the document: one read."""
        ...


class DocumentStore(Protocol):
    """Durable storage of one document per id: an append-only log of updates."""

    async def load(self, doc_id: str) -> Sequence[bytes]:
        """Every stored update of the document (a full state first, if compacted)."""
        ...

    async def append(self, doc_id: str, updates: Sequence[bytes]) -> None:
        """Durably append ``updates``; returns only once they are committed."""
        ...

    async def compact(self, doc_id: str) -> object:
        """Merge the log into one state and delete exactly what was merged, atomically."""
        ...

    async def unloaded(self, doc_id: str, state: bytes) -> None:
        """The room was unloaded with this full state; a chance to compact its log."""
        ...


class RoomMetrics(Protocol):
    """What the registry reports for monitoring; the server backs it with Prometheus."""

    def committed(self, updates: int, oldest_wait_s: float) -> None:
        """A group commit stored ``updates``; the oldest had waited ``oldest_wait_s``."""
        ...

    def compacted(self, ok: bool) -> None: ...

    def slow_consumer(self) -> None: ...


class NoMetrics:
    def committed(self, updates: int, oldest_wait_s: float) -> None:
        pass

    def compacted(self, ok: bool) -> None:
        pass

    def slow_consumer(self) -> None:
        pass


class RoomHooks(Protocol):
    """Work done after a room's edits settle (projection, automatic versions)."""

    async def settled(self, doc_id: str, doc: Doc[Any]) -> None: ...


# -- across instances -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteUpdate:
    """A document update accepted by instance ``origin``; ``seq`` counts its updates."""

    origin: str
    seq: int
    update: bytes


@dataclass(frozen=True, slots=True)
class RemoteCommitted:
    """Instance ``origin`` has stored its updates up to ``seq``."""

    origin: str
    seq: int


@dataclass(frozen=True, slots=True)
class RemoteAwareness:
    origin: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class RemoteAccess:
    """A member's role changed on another instance: ``can_edit`` None means removed."""

    user_id: str
    can_edit: bool | None


@dataclass(frozen=True, slots=True)
class RemoteGone:
    """Instance ``origin`` stopped sending heartbeats: drop its presence."""

    origin: str


@dataclass(frozen=True, slots=True)
class FanoutGap:
    """Messages may have been missed (an outage, a trimmed log): reload from the store."""

    reason: str


RemoteEvent = (
    RemoteUpdate | RemoteCommitted | RemoteAwareness | RemoteAccess | RemoteGone | FanoutGap
)


class ReplicaTarget(Protocol):
    """The live room a ``Replicator`` keeps in step with the other instances."""

    @property
    def doc_id(self) -> str: ...

    def accept(self, update: bytes, *, publish: bool = True) -> None:
        """Store ``update`` (published: also announce it to the other instances)."""
        ...

    def apply_remote(self, update: bytes) -> None: ...

    def remote_awareness(self, origin: str, payload: bytes) -> None: ...

    def access_changed(self, user_id: str, can_edit: bool | None) -> None: ...

    def origin_gone(self, origin: str) -> None: ...

    async def reload(self) -> None:
        """Catch up from the store: messages from other instances may have been missed."""
        ...


class Fanout(Protocol):
    """Carries a room's updates and presence to the other instances holding it.

    Publishing never waits; events from other instances (never our own) reach ``deliver``
    in order. ``open`` starts delivery a little in the past, so nothing published while the
    room was loading from the store is missed (duplicates are harmless: updates are
    idempotent).
    """

    instance_id: str

    async def open(self, doc_id: str, deliver: Callable[[RemoteEvent], None]) -> None: ...

    async def close(self, doc_id: str) -> None: ...

    def publish(self, doc_id: str, event: RemoteEvent) -> None: ...

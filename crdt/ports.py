"""What the room registry needs from the outside world, as small Protocols.

``persistence`` implements ``DocumentStore`` on PostgreSQL; ``persistence.memory`` has the
in-memory twin used by unit tests and by the embedded mode before a database is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, Protocol

from pycrdt import Doc


class Disconnect(Enum):
    """Why the registry closes a connection; the server maps these to close codes."""

    SLOW_CONSUMER = "slow_consumer"
    MALFORMED = "malformed"
    REVOKED = "revoked"
    SHUTDOWN = "shutdown"


class Peer(Protocol):
    """One client connection as the registry sees it. ``send`` never waits."""

    @property
    def user_id(self) -> str: ...

    def send(self, frame: bytes) -> bool:
        """Queue ``frame``; False when the connection's bounded queue would overflow."""
        ...

    def close(self, reason: Disconnect) -> None:
        """Ask the connection to close; it leaves the room through ``Rooms.leave``."""
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


class RoomHooks(Protocol):
    """Work done after a room's edits settle (projection, automatic versions)."""

    async def settled(self, doc_id: str, doc: Doc[Any]) -> None: ...

"""A live room's copy of its project's member list, so that joins of a live room need no query.

Read with the document (after the fan-out subscription, so no access change falls between),
kept current by every access change the room hears (local ones, and other instances' through
the fan-out), and read again once older than its time to live, so that even a change the room
never heard of is seen within twice that time. Changes heard while a read runs are applied on
top of its result, and only the newest read's result counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from crdt.ports import Clock, FirstJoinReader, Membership

__all__ = ["MemberList", "NotAMember"]

log = logging.getLogger(__name__)

# A change of one member: may edit, may only view, or (None) removed.
_Change = tuple[str, bool | None]


class NotAMember(Exception):
    """A cold room was opened for a join by someone its member list does not hold."""


def _apply(members: dict[str, bool], user_id: str, can_edit: bool | None) -> None:
    if can_edit is None:
        members.pop(user_id, None)
    else:
        members[user_id] = can_edit


class MemberList:
    def __init__(
        self,
        doc_id: str,
        membership: Membership | None,
        first_join: FirstJoinReader | None,
        *,
        ttl_s: float,
        clock: Clock,
    ) -> None:
        self._doc_id = doc_id
        self._membership = membership
        self._first_join = first_join
        self._ttl_s = ttl_s
        self._clock = clock
        # user id -> may edit; None while unknown (not read yet, too many to keep, a failed
        # read, or forgotten because changes may have been missed).
        self.current: dict[str, bool] | None = None
        self._read_at = 0.0
        self._reads = 0  # numbers the reads; only the newest one's result counts
        self._changes: dict[int, list[_Change]] = {}
        self._refresh: asyncio.Task[None] | None = None
        # Resolved once the first read is over (``current`` may still be None).
        self.known: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def read(self) -> None:
        """(Re)read the member list. A read that a newer one overtook is dropped (the newer one
        started after whatever made it necessary, such as a gap in the fan-out)."""
        if self._membership is None:
            return
        number, read_at = self._started()
        try:
            members = await self._membership.members(self._doc_id)
        except Exception:  # joins fall back to a query each
            log.warning("reading members failed", exc_info=True, extra={"project_id": self._doc_id})
            members = None
        finally:
            changes = self._changes.pop(number)
        self._done(number, read_at, members, changes)

    async def read_for_first_join(self, user_id: str) -> Sequence[bytes] | None:
        """The member list and, only if ``user_id`` is on it, the document's stored updates
        (None if not), in one statement; only when ``reads_documents``."""
        assert self._first_join is not None
        number, read_at = self._started()
        try:
            read = await self._first_join.read_first_join(self._doc_id, user_id)
        finally:
            changes = self._changes.pop(number)
        self._done(number, read_at, read.members, changes)
        return read.updates

    @property
    def reads_documents(self) -> bool:
        """Whether ``read_for_first_join`` also reads the document."""
        return self._first_join is not None

    def holds(self, user_id: str) -> bool:
        return self.current is not None and user_id in self.current

    def changed(self, user_id: str, can_edit: bool | None) -> None:
        """An access change this room heard; applied now and on top of any read under way."""
        for changes in self._changes.values():
            changes.append((user_id, can_edit))
        if self.current is not None:
            _apply(self.current, user_id, can_edit)

    def lookup(self, user_id: str) -> tuple[bool, bool] | None:
        """``(is_member, can_edit)``, or None if unknown here. A list older than its time to
        live is read again; it keeps answering while that read runs, up to twice that age."""
        members = self.current
        if members is None:
            return None
        age_s = self._clock() - self._read_at
        if age_s > self._ttl_s and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self.read())
        if age_s > 2 * self._ttl_s:
            return None
        can_edit = members.get(user_id)
        return (False, False) if can_edit is None else (True, can_edit)

    def mark_known(self) -> None:
        if not self.known.done():
            self.known.set_result(None)

    def forget(self) -> None:
        """Changes may have been missed: joins ask the database until the next read."""
        self.current = None

    def close(self) -> None:
        self.current = None
        if self._refresh is not None:
            self._refresh.cancel()

    def _started(self) -> tuple[int, float]:
        self._reads += 1
        self._changes[self._reads] = []
        return self._reads, self._clock()

    def _done(
        self,
        number: int,
        read_at: float,
        members: dict[str, bool] | None,
        changes: list[_Change],
    ) -> None:
        if number != self._reads:
            return
        if members is not None:
            for user_id, can_edit in changes:
                _apply(members, user_id, can_edit)
        self.current, self._read_at = members, read_at

"""Revoked users: their tokens are refused even before they expire."""

from __future__ import annotations

from persistence.db import Database


class RevokedUsers:
    """An in-memory copy of ``revoked_users``, refreshed from the database.

    Checks happen on every request and websocket join, so they read this set, never the
    database; a revocation reaches every instance within one refresh interval.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.user_ids: frozenset[str] = frozenset()

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.user_ids

    async def refresh(self) -> frozenset[str]:
        """Reload the set; returns the users revoked since the last refresh."""
        rows = await self._db.fetch("SELECT user_id FROM revoked_users")
        current = frozenset(r["user_id"] for r in rows)
        added = current - self.user_ids
        self.user_ids = current
        return added

    async def revoke(self, user_id: str, reason: str | None = None) -> None:
        await self._db.execute(
            """INSERT INTO revoked_users (user_id, reason) VALUES ($1, $2)
               ON CONFLICT (user_id) DO UPDATE SET reason = EXCLUDED.reason, updated_at = now()""",
            user_id,
            reason,
        )
        self.user_ids = self.user_ids | {user_id}

    async def restore(self, user_id: str) -> None:
        await self._db.execute("DELETE FROM revoked_users WHERE user_id = $1", user_id)
        self.user_ids = self.user_ids - {user_id}

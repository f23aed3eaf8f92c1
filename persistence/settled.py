"""What runs after a room's edits settle: the SQL projection and automatic versions."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pycrdt import Doc

from crdt.timeline import read_timeline
from persistence.db import Database
from persistence.projection import project_timeline
from persistence.versions import PgVersions

log = logging.getLogger(__name__)


class SettledWork:
    """Implements ``crdt.ports.RoomHooks``."""

    def __init__(self, db: Database, versions: PgVersions, *, auto_version_interval_s: int) -> None:
        self._db = db
        self._versions = versions
        self._auto_version_interval_s = auto_version_interval_s

    async def settled(self, doc_id: str, doc: Doc[Any]) -> None:
        # Read the live doc once, before any await, so both writes see one consistent state.
        timeline = read_timeline(doc)
        state = doc.get_update()
        project_id = uuid.UUID(doc_id)
        async with self._db.transaction() as conn:
            result = await project_timeline(conn, project_id, timeline)
        if result.skipped:
            log.info(
                "projection skipped malformed entries",
                extra={"project_id": doc_id, "skipped": result.skipped},
            )
        await self._versions.create_auto_if_due(project_id, state, self._auto_version_interval_s)

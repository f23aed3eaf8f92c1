"""The tunables of a live room, with their units in their names."""

from __future__ import annotations

from dataclasses import dataclass


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

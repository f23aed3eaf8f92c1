"""Settings, read once from the environment (``FLOWAI_*``) by the composition root."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crdt.rooms import RoomSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWAI_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Unset: an embedded PostgreSQL is started in ``data_dir``.
    database_url: str | None = None
    # Unset: a single instance fans out in-process.
    redis_url: str | None = None
    data_dir: Path = Path(".flowai")
    db_pool_min: int = 2
    db_pool_max: int = 10
    log_level: str = "INFO"
    log_json: bool = True

    # Auth: Supabase-compatible JWTs. HS256 with ``jwt_secret``; asymmetric keys via JWKS.
    # Unset secret: a random one is created in ``data_dir/jwt_secret`` for local use.
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_s: int = 30

    # Websocket limits.
    message_bytes_max: int = 16 * 1024 * 1024
    send_queue_bytes_max: int = 32 * 1024 * 1024
    awareness_state_bytes_max: int = 64 * 1024
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 60.0
    backlog: int = 2048
    # Per-connection inbound limits (close 4429 when exceeded); bursts absorb reconnect syncs.
    conn_messages_per_s: float = 500
    conn_messages_burst: float = 2000
    conn_bytes_per_s: float = 4 * 1024 * 1024
    conn_bytes_burst: float = 64 * 1024 * 1024

    # Rooms.
    group_commit_ms: int = Field(default=20, ge=0, le=1000)
    awareness_coalesce_ms: int = Field(default=50, ge=0, le=1000)
    room_unload_grace_ms: int = Field(default=10_000, ge=0)
    compact_updates_max: int = Field(default=1_000, ge=1)
    compact_bytes_max: int = Field(default=4 * 1024 * 1024, ge=1)
    settle_ms: int = Field(default=1_000, ge=0)
    settle_ms_max: int = Field(default=10_000, ge=0)
    # Across instances (with redis_url): how long Redis keeps a document's recent updates,
    # and how long another instance's update may stay unconfirmed before we store it too.
    fanout_retention_s: int = Field(default=300, ge=10)
    # Instances refresh a liveness key this often; presence of one silent for ~3-5 beats goes.
    fanout_heartbeat_s: float = Field(default=5.0, gt=0)
    confirm_timeout_ms: int = Field(default=10_000, ge=100)
    # At most one automatic version per project per interval while it is being edited.
    auto_version_interval_s: int = Field(default=600, ge=1)

    def room_settings(self) -> RoomSettings:
        return RoomSettings(
            group_commit_ms=self.group_commit_ms,
            awareness_coalesce_ms=self.awareness_coalesce_ms,
            unload_grace_ms=self.room_unload_grace_ms,
            awareness_state_bytes_max=self.awareness_state_bytes_max,
            compact_updates_max=self.compact_updates_max,
            compact_bytes_max=self.compact_bytes_max,
            settle_ms=self.settle_ms,
            settle_ms_max=self.settle_ms_max,
            confirm_timeout_ms=self.confirm_timeout_ms,
        )

    def resolved_jwt_secret(self) -> str:
        """The HS256 secret: configured, or the local one kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

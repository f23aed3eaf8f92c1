"""Settings, read once from the environment (``FLOWAI_*``) by the composition root."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crdt.live.settings import RoomSettings


def default_data_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """Where data lives when ``FLOWAI_DATA_DIR`` is unset: ``$XDG_DATA_HOME/flowai``, else
    ``~/.local/share/flowai``. Never the current directory, so every command, started from
    anywhere, finds the same database and token secret."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative one
        return Path(xdg) / "flowai"
    return (home or Path.home()) / ".local" / "share" / "flowai"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWAI_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Unset: an embedded PostgreSQL is started in ``data_dir``.
    database_url: str | None = None
    # Unset: a single instance fans out in-process.
    redis_url: str | None = None
    # The embedded database (``pg/``), the local JWT secret and local media.
    data_dir: Path = Field(default_factory=default_data_dir)
    db_pool_min: int = 2
    db_pool_max: int = 20
    log_level: str = "INFO"
    log_json: bool = True

    # Auth: Supabase-compatible JWTs. HS256 with ``jwt_secret``; asymmetric keys via JWKS.
    # Unset secret: a random one is created in ``data_dir/jwt_secret`` for local use.
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = "authenticated"
    jwt_issuer: str | None = None
    # Tolerated clock difference when checking a token's ``exp``/``nbf``/``iat``.
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    # Longer tokens are refused before any decoding (Supabase's are about 1 KiB).
    jwt_bytes_max: int = Field(default=8 * 1024, ge=256)
    # How often job and credit figures are read from the database for /metrics.
    metrics_sample_interval_s: float = Field(default=15.0, gt=0)
    # How often every instance reloads revoked users (and closes their connections).
    revoked_users_refresh_s: float = Field(default=10.0, gt=0)

    # Websocket limits.
    message_bytes_max: int = 16 * 1024 * 1024
    send_queue_bytes_max: int = 32 * 1024 * 1024
    awareness_state_bytes_max: int = 64 * 1024
    # Pings keep proxies and NATs from dropping quiet connections (0 turns them off). Pongs
    # are not timed: one waits behind a large document still being sent to a slow client,
    # and would cut it off; dead peers are found by ``idle_timeout_s`` instead.
    ws_ping_interval_s: float = Field(default=20.0, ge=0)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    # Off by default: Yjs frames are small binary that compresses poorly, and deflate is paid
    # per recipient, so a broadcast would be compressed once per connection (and each
    # compressor keeps ~40 KB of state per connection).
    ws_per_message_deflate: bool = False
    # JSON request bodies (uploads have their own limits); larger ones get 413.
    http_body_bytes_max: int = Field(default=1024 * 1024, gt=0)
    # Browser origins (comma-separated, e.g. ``https://app.example.com``) allowed to call the
    # REST API and load media from another origin; none by default. ``*`` allows any.
    cors_origins: str = ""
    # How clients reach this server (``https://api.example.com``), for the absolute media
    # links the API returns; unset: the request's own scheme and host (proxy headers honoured).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    # Documents: edits that would grow one beyond this are refused (the client is told).
    doc_bytes_max: int = Field(default=64 * 1024 * 1024, gt=0)
    # Open websocket connections per user on one instance (4529 beyond).
    user_connections_max: int = Field(default=64, gt=0)
    backlog: int = 2048
    # Per-connection inbound limits; bursts absorb reconnect syncs. A client over them is slowed
    # (its socket is not read until they refill); one over them this long is closed (4529).
    conn_messages_per_s: float = 500
    conn_messages_burst: float = 2000
    conn_bytes_per_s: float = 4 * 1024 * 1024
    conn_bytes_burst: float = 64 * 1024 * 1024
    conn_throttle_close_s: float = Field(default=10.0, gt=0)
    # Browser origins (``scheme://host[:port]``, comma-separated) that may open a websocket;
    # unset: any. Requests without an Origin, and pages of this server itself, always may.
    ws_origins: Annotated[frozenset[str], NoDecode] = frozenset()

    # Rooms.
    group_commit_ms: int = Field(default=20, ge=0, le=1000)
    awareness_coalesce_ms: int = Field(default=50, ge=0, le=1000)
    room_unload_grace_ms: int = Field(default=10_000, ge=0)
    compact_updates_max: int = Field(default=1_000, ge=1)
    compact_bytes_max: int = Field(default=4 * 1024 * 1024, ge=1)
    # Merge compactions in a worker process (see ``persistence.merge_process``); off: in a
    # thread of the server, whose event loop then stalls while a compaction holds the GIL.
    compact_in_process: bool = True
    settle_ms: int = Field(default=1_000, ge=0)
    settle_ms_max: int = Field(default=10_000, ge=0)
    # Across instances (with redis_url): how long Redis keeps a document's recent updates,
    # and how long another instance's update may stay unconfirmed before we store it too.
    fanout_retention_s: int = Field(default=300, ge=10)
    # Instances refresh a liveness key this often; presence of one silent for ~3-5 beats goes.
    fanout_heartbeat_s: float = Field(default=5.0, gt=0)
    confirm_timeout_ms: int = Field(default=10_000, ge=100)
    # Credits: the margin added to providers' prices, and how often abandoned holds expire.
    credit_margin_percent: int = Field(default=30, ge=0, le=1000)
    credit_sweep_interval_s: float = Field(default=30.0, gt=0)
    # At most one automatic version per project per interval while it is being edited.
    auto_version_interval_s: int = Field(default=600, ge=1)

    # AI providers (docs/ai.md). The API keys use the providers' own variable names.
    openai_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "FLOWAI_OPENAI_API_KEY", "openai_api_key"),
    )
    elevenlabs_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "ELEVENLABS_API_KEY", "FLOWAI_ELEVENLABS_API_KEY", "elevenlabs_api_key"
        ),
    )
    openai_base_url: str | None = None
    elevenlabs_base_url: str | None = None
    # SDK-level retries of paid calls: a retried image or transcription can be billed twice,
    # so the job's own retry policy decides instead.
    ai_sdk_max_retries: int = Field(default=0, ge=0, le=1)
    openai_text_model: str = "gpt-4o-mini"
    openai_text_timeout_s: float = Field(default=60.0, gt=0)
    # whisper-1 and the gpt-4o transcribe models are retired on 2027-02-26. Models listed in
    # openai_segment_models return segment timestamps; others are sent one speech region at
    # a time.
    openai_transcribe_model: str = "whisper-1"
    openai_segment_models: list[str] = ["whisper-1"]
    openai_transcribe_timeout_s: float = Field(default=300.0, gt=0)
    openai_upload_bytes_max: int = Field(default=25 * 1024 * 1024, ge=16 * 1024)
    openai_image_model: str = "gpt-image-1"
    openai_image_quality: str = Field(default="low", pattern="^(low|medium|high)$")
    openai_image_size: str = "1024x1024"
    openai_image_timeout_s: float = Field(default=180.0, gt=0)
    elevenlabs_tts_model: str = "eleven_multilingual_v2"
    elevenlabs_voice_id: str = "JBFqnCBsd6RMkjVDRZzb"
    elevenlabs_timeout_s: float = Field(default=60.0, gt=0)
    elevenlabs_clone_timeout_s: float = Field(default=120.0, gt=0)
    # Jobs. Unset jobs_in_process: workers run inside `flowai serve` when the database is
    # embedded; otherwise run `flowai worker`.
    jobs_in_process: bool | None = None
    job_concurrency: int = Field(default=4, ge=1, le=64)
    job_max_attempts: int = Field(default=4, ge=1, le=20)
    job_retry_base_s: float = Field(default=2.0, ge=0)
    job_retry_max_s: float = Field(default=120.0, ge=0)
    job_heartbeat_s: float = Field(default=10.0, gt=0)
    job_stalled_after_s: float = Field(default=30.0, gt=0)
    job_poll_s: float = Field(default=5.0, gt=0)
    job_recovery_interval_s: float = Field(default=15.0, gt=0)
    job_shutdown_grace_s: float = Field(default=10.0, ge=0)
    job_hold_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    # Media: S3 when a bucket is set, else files in media_dir (default data_dir/media).
    media_s3_bucket: str | None = None
    media_s3_prefix: str = "media"
    media_s3_endpoint_url: str | None = None
    media_s3_region: str | None = None
    # path for stores under one host and a path prefix (Supabase Storage, MinIO), virtual for
    # bucket host names, auto: botocore decides.
    media_s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Both or neither; unset: boto3's usual chain (AWS_* variables, profile, instance role).
    media_s3_access_key_id: str | None = None
    media_s3_secret_access_key: str | None = None
    media_dir: Path | None = None
    media_url_ttl_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    media_upload_bytes_max: int = Field(default=512 * 1024 * 1024, ge=1024)
    # AI input limits and per-user rate limits (requests per period, per operation class).
    ai_prompt_chars_max: int = Field(default=2000, ge=1, le=20_000)
    ai_media_minutes_max: int = Field(default=60, ge=1)
    ai_rate_content_per_minute: int = Field(default=10, ge=1)
    ai_rate_subtitles_per_hour: int = Field(default=20, ge=1)
    ai_rate_dubbing_per_hour: int = Field(default=10, ge=1)
    ai_rate_thumbnail_per_hour: int = Field(default=20, ge=1)
    ai_rate_voices_per_day: int = Field(default=10, ge=1)
    ai_rate_uploads_per_hour: int = Field(default=120, ge=1)

    # Render (docs/render.md): ffmpeg on this machine, or Remotion Lambda.
    render_backend: str = Field(default="local", pattern="^(local|remotion_lambda)$")
    render_local_preset: str = Field(
        default="veryfast", pattern="^(ultrafast|superfast|veryfast|faster|fast|medium)$"
    )
    render_local_threads: int | None = Field(default=None, ge=1, le=64)
    render_local_inputs_max: int = Field(default=100, ge=1, le=400)
    render_local_concurrency: int = Field(default=1, ge=1, le=16)
    # ``file://`` asset URIs the local renderer may read (none by default).
    render_file_roots: list[Path] = []
    render_media_url_ttl_s: int = Field(default=6 * 3600, ge=60)
    remotion_region: str = "us-east-1"
    remotion_function_name: str | None = None
    remotion_serve_url: str | None = None
    # Must equal the deployed function's version and the installed remotion-lambda client's.
    remotion_version: str | None = None
    remotion_composition: str = "Timeline"
    remotion_bucket_name: str | None = None
    remotion_lambda_endpoint_url: str | None = None
    remotion_s3_endpoint_url: str | None = None
    remotion_frames_per_lambda: int | None = Field(default=None, ge=4)
    remotion_concurrency: int | None = Field(default=None, ge=1, le=200)
    remotion_privacy: str = Field(default="private", pattern="^(public|private|no-acl)$")
    remotion_license_key: str | None = None
    remotion_poll_interval_s: float = Field(default=2.0, gt=0)
    remotion_timeout_s: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _media_s3_keys_go_together(self) -> Self:
        if (self.media_s3_access_key_id is None) != (self.media_s3_secret_access_key is None):
            raise ValueError(
                "set FLOWAI_MEDIA_S3_ACCESS_KEY_ID and FLOWAI_MEDIA_S3_SECRET_ACCESS_KEY together"
            )
        return self

    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # Resolved once, so that processes started elsewhere (uvicorn workers) agree.
        return value.expanduser().absolute()

    @field_validator("ws_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple | set | frozenset):
            return value
        return frozenset(o.strip().lower().rstrip("/") for o in items if o.strip())

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
            doc_bytes_max=self.doc_bytes_max,
        )

    def resolved_jwt_secret(self) -> str:
        """The HS256 secret: configured, or the local one kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # Written private, then linked into place: it appears whole or not at all, and
            # of two first starts at once, the later keeps the earlier one's secret.
            draft = path.with_name(f".jwt_secret.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()

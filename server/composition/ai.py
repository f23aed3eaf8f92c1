"""The AI part of the composition root: providers, media storage, jobs, the queue and its
workers, rate limits. Used by the server's lifespan and by ``flowai worker``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final, cast

import httpx

from ai.jobs.context import JobKind, JobRegistry, RetryPolicy
from ai.jobs.queue import JobQueue, WorkerSettings
from ai.jobs.runner import Jobs
from ai.media import LocalMediaStore, S3ClientOptions, S3MediaStore, s3_client
from ai.operations import content, dubbing, subtitles, thumbnail, voices
from ai.operations.common import Limits, Providers
from ai.ports import MediaStore
from ai.providers.elevenlabs import (
    ElevenLabsCloner,
    ElevenLabsConfig,
    ElevenLabsSpeech,
    elevenlabs_client,
)
from ai.providers.openai import (
    OpenAIConfig,
    OpenAIImages,
    OpenAIText,
    OpenAITranscriber,
    openai_client,
)
from ai.rate_limit import MemoryRateLimiter, Rate, RateLimiter, RedisRateLimiter
from billing.prices import PriceTable
from billing.service import CreditService
from crdt.live.registry import Rooms
from persistence.db import Database
from persistence.jobs_pg import PgJobStore, PgVoiceStore, ensure_queue_schema
from server.settings import Settings

__all__ = ["AiServices", "build_ai_services", "media_url_secret"]

log = logging.getLogger(__name__)

_MINUTE: Final = 60
_HOUR: Final = 3600
_DAY: Final = 86400


@dataclass
class AiServices:
    jobs: Jobs
    queue: JobQueue
    job_store: PgJobStore
    voice_store: PgVoiceStore
    providers: Providers
    limits: Limits
    media: MediaStore
    # Set when media lives in a local directory that the app serves at ``/media``.
    local_media: LocalMediaStore | None
    rate_limiter: RateLimiter
    rates: dict[str, Rate]
    media_url_ttl_s: int
    media_upload_bytes_max: int
    worker_task: asyncio.Task[None] | None = field(default=None, repr=False)


def media_url_secret(settings: Settings) -> bytes:
    """Key for signing local media links, derived from the token secret (one secret to
    manage; a leaked media link reveals nothing about tokens)."""
    secret = settings.resolved_jwt_secret().encode()
    return hmac.new(secret, b"flowai media links v1", hashlib.sha256).digest()


def _media(settings: Settings) -> tuple[MediaStore, LocalMediaStore | None]:
    if settings.media_s3_bucket:
        client = s3_client(
            S3ClientOptions(
                endpoint_url=settings.media_s3_endpoint_url,
                region=settings.media_s3_region,
                addressing_style=settings.media_s3_addressing_style,
                access_key_id=settings.media_s3_access_key_id,
                secret_access_key=settings.media_s3_secret_access_key,
            )
        )
        bucket, prefix = settings.media_s3_bucket, settings.media_s3_prefix
        return S3MediaStore(client, bucket=bucket, prefix=prefix), None
    root = settings.media_dir or settings.data_dir / "media"
    root.mkdir(parents=True, exist_ok=True)
    local = LocalMediaStore(root, secret=media_url_secret(settings))
    return local, local


def _providers(settings: Settings, voice_store: PgVoiceStore, stack: AsyncExitStack) -> Providers:
    text = transcriber = images = None
    if settings.openai_api_key:
        config = OpenAIConfig(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            max_retries=settings.ai_sdk_max_retries,
            text_model=settings.openai_text_model,
            text_timeout_s=settings.openai_text_timeout_s,
            transcribe_model=settings.openai_transcribe_model,
            transcribe_timeout_s=settings.openai_transcribe_timeout_s,
            segment_models=frozenset(settings.openai_segment_models),
            upload_bytes_max=settings.openai_upload_bytes_max,
            image_model=settings.openai_image_model,
            image_quality=cast(Any, settings.openai_image_quality),
            image_size=settings.openai_image_size,
            image_timeout_s=settings.openai_image_timeout_s,
        )
        client = openai_client(config)
        stack.push_async_callback(client.close)
        text = OpenAIText(client, config)
        transcriber = OpenAITranscriber(client, config)
        images = OpenAIImages(client, config)
    speech = cloner = None
    if settings.elevenlabs_api_key:
        el_config = ElevenLabsConfig(
            api_key=settings.elevenlabs_api_key,
            base_url=settings.elevenlabs_base_url,
            max_retries=settings.ai_sdk_max_retries,
            tts_model=settings.elevenlabs_tts_model,
            default_voice_id=settings.elevenlabs_voice_id,
            tts_timeout_s=settings.elevenlabs_timeout_s,
            clone_timeout_s=settings.elevenlabs_clone_timeout_s,
        )
        http = httpx.AsyncClient(timeout=el_config.tts_timeout_s, follow_redirects=True)
        stack.push_async_callback(http.aclose)
        el_client = elevenlabs_client(el_config, http)
        speech = ElevenLabsSpeech(el_client, el_config)
        cloner = ElevenLabsCloner(el_client, el_config)
    return Providers(
        text=text,
        transcriber=transcriber,
        images=images,
        speech=speech,
        cloner=cloner,
        voices=voice_store,
    )


def _rates(settings: Settings) -> dict[str, Rate]:
    return {
        "content": Rate(settings.ai_rate_content_per_minute, _MINUTE),
        "subtitles": Rate(settings.ai_rate_subtitles_per_hour, _HOUR),
        "dubbing": Rate(settings.ai_rate_dubbing_per_hour, _HOUR),
        "thumbnail": Rate(settings.ai_rate_thumbnail_per_hour, _HOUR),
        "voices": Rate(settings.ai_rate_voices_per_day, _DAY),
        "uploads": Rate(settings.ai_rate_uploads_per_hour, _HOUR),
    }


async def _rate_limiter(settings: Settings, stack: AsyncExitStack) -> RateLimiter:
    if not settings.redis_url:
        return MemoryRateLimiter()
    from redis.asyncio import Redis

    redis: Redis = Redis.from_url(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    return RedisRateLimiter(redis)


def workers_in_process(settings: Settings) -> bool:
    """Whether this server runs job workers itself: when told to, else when its database is
    the embedded one (no other machine can reach it) or there is no Redis (``flowai worker``
    needs it to reach the server's live rooms, and refuses to start without it).

    ``flowai serve`` answers this before it hands the embedded database's URL to its
    processes, and passes the answer on as ``FLOWAI_JOBS_IN_PROCESS`` (they would otherwise
    see a configured database)."""
    if settings.jobs_in_process is not None:
        return settings.jobs_in_process
    return settings.database_url is None or settings.redis_url is None


async def build_ai_services(
    settings: Settings,
    dsn: str,
    db: Database,
    rooms: Rooms,
    stack: AsyncExitStack,
    *,
    credits: CreditService,
    run_workers: bool,
    kinds: Sequence[JobKind] = (),
) -> AiServices:
    """Build the AI services; ``kinds`` adds job kinds of other packages (render)."""
    await ensure_queue_schema(db)
    job_store = PgJobStore(db)
    voice_store = PgVoiceStore(db)
    providers = _providers(settings, voice_store, stack)
    media, local_media = _media(settings)
    limits = Limits(
        prompt_chars_max=settings.ai_prompt_chars_max,
        media_duration_ms_max=settings.ai_media_minutes_max * 60_000,
        upload_bytes_max=settings.openai_upload_bytes_max,
    )
    registry = JobRegistry()
    for kind in (
        content.job_kind(providers),
        subtitles.job_kind(providers, limits),
        dubbing.job_kind(providers, limits),
        thumbnail.job_kind(providers),
        voices.job_kind(providers),
        *kinds,
    ):
        registry.register(kind)
    margin = settings.credit_margin_percent
    retry = RetryPolicy(
        max_attempts=settings.job_max_attempts,
        base_delay_s=settings.job_retry_base_s,
        max_delay_s=settings.job_retry_max_s,
        transient=_infrastructure_errors(),
    )
    jobs = Jobs(
        store=job_store,
        credits=credits,
        prices=PriceTable(margin_percent=margin),
        registry=registry,
        rooms=rooms,
        media=media,
        retry=retry,
        hold_ttl_s=settings.job_hold_ttl_s,
    )
    worker_settings = WorkerSettings(
        concurrency=settings.job_concurrency,
        heartbeat_s=settings.job_heartbeat_s,
        stalled_after_s=settings.job_stalled_after_s,
        poll_s=settings.job_poll_s,
        recovery_interval_s=settings.job_recovery_interval_s,
        shutdown_grace_s=settings.job_shutdown_grace_s,
    )
    queue = JobQueue(dsn, jobs, worker_settings)
    await queue.open()
    stack.push_async_callback(queue.close)
    services = AiServices(
        jobs=jobs,
        queue=queue,
        job_store=job_store,
        voice_store=voice_store,
        providers=providers,
        limits=limits,
        media=media,
        local_media=local_media,
        rate_limiter=await _rate_limiter(settings, stack),
        rates=_rates(settings),
        media_url_ttl_s=settings.media_url_ttl_s,
        media_upload_bytes_max=settings.media_upload_bytes_max,
    )
    if run_workers:
        task = asyncio.create_task(queue.run_worker(name="in-process"), name="job-worker")
        services.worker_task = task

        async def stop_worker() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        stack.push_async_callback(stop_worker)
    return services


def _infrastructure_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (ConnectionError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)

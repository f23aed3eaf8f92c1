"""What the AI operations need from the outside world, as small Protocols.

Providers: ``TextModel``, ``Transcriber``, ``ImageModel`` (OpenAI, ``ai.providers.openai``),
``SpeechSynthesizer`` and ``VoiceCloner`` (ElevenLabs, ``ai.providers.elevenlabs``). Each call
reports the usage the provider billed, which is what the job captures. Storage:
``MediaStore`` (``ai.media``: S3 or a local directory), ``JobStore`` and ``VoiceStore``
(``persistence.jobs_pg``). Collaboration: ``LiveDocuments``, the live documents a job writes
its result into and shows its progress in; ``crdt.live.registry.Rooms`` satisfies it as it
is, and the composition root passes the rooms in, so this package needs no live room
registry of its own (and its tests can hand in anything with these two methods).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pycrdt import Doc
from pydantic import BaseModel

from ai.segments import Segment
from ai.usage import Usage

__all__ = [
    "ClonedVoice",
    "GeneratedImage",
    "ImageModel",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "LiveDocuments",
    "MediaStore",
    "SpeechResult",
    "SpeechSynthesizer",
    "TextModel",
    "TextRequest",
    "TextResult",
    "Transcriber",
    "Transcript",
    "VoiceClone",
    "VoiceCloner",
    "VoiceStore",
]

T = TypeVar("T", bound=BaseModel)


# -- Providers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextRequest(Generic[T]):
    """A structured generation: a fixed system prompt, delimited user data, a schema."""

    system: str
    user: str
    schema: type[T]
    max_output_tokens: int


@dataclass(frozen=True, slots=True)
class TextResult(Generic[T]):
    value: T
    usage: Usage


class TextModel(Protocol):
    @property
    def product(self) -> str: ...

    async def generate(self, request: TextRequest[T]) -> TextResult[T]: ...


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    # Relative to the start of the audio sent; empty when the model gives no timestamps.
    segments: tuple[Segment, ...]
    language: str | None
    usage: Usage


class Transcriber(Protocol):
    @property
    def product(self) -> str: ...

    @property
    def returns_segments(self) -> bool:
        """Whether this model returns segment timestamps (``verbose_json``)."""
        ...

    async def transcribe(
        self, audio: Path, *, duration_ms: int, language: str | None
    ) -> Transcript: ...


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    usage: Usage


class ImageModel(Protocol):
    @property
    def product(self) -> str: ...

    async def generate(self, prompt: str) -> GeneratedImage: ...


@dataclass(frozen=True, slots=True)
class SpeechResult:
    audio: bytes  # MP3
    usage: Usage


class SpeechSynthesizer(Protocol):
    @property
    def product(self) -> str: ...

    @property
    def default_voice_id(self) -> str: ...

    async def synthesize(
        self, text: str, *, voice_id: str, language: str | None
    ) -> SpeechResult: ...


@dataclass(frozen=True, slots=True)
class ClonedVoice:
    provider_voice_id: str
    requires_verification: bool
    usage: Usage


class VoiceCloner(Protocol):
    async def clone(
        self, *, name: str, description: str | None, samples: Sequence[Path]
    ) -> ClonedVoice: ...

    async def delete(self, provider_voice_id: str) -> None:
        """Delete the voice at the provider; a voice already gone is not an error."""
        ...


# -- Media --------------------------------------------------------------------------------


class MediaStore(Protocol):
    """Objects by key (``projects/<id>/...``). ``url`` is a time-limited link for clients."""

    async def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` into ``path``; ``MediaNotFound`` when there is no such object."""
        ...

    async def url(self, key: str, *, ttl_s: int) -> str: ...

    async def delete(self, key: str) -> None: ...


# -- Live documents -----------------------------------------------------------------------


class LiveDocuments(Protocol):
    """The project documents collaborators are editing, as jobs use them."""

    async def edit(
        self, doc_id: str, change: Callable[[Doc[Any]], object], *, origin: str = "server"
    ) -> bytes | None:
        """Apply ``change`` to the document live (every collaborator sees it) and persist it;
        the update it made, or None when it changed nothing."""
        ...

    def presence(self, doc_id: str, client_id: int, state: dict[str, Any] | None) -> None:
        """Show ``state`` (None: remove it) as ``client_id``'s awareness presence to the
        document's collaborators; nothing is written to the document."""
        ...


# -- Jobs ---------------------------------------------------------------------------------


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    id: uuid.UUID
    kind: str
    user_id: str
    project_id: uuid.UUID | None
    status: JobStatus
    stage: str | None
    progress: float
    input: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    estimate: int
    cost: int | None
    hold_id: uuid.UUID | None
    usage: dict[str, Any] | None
    attempts: int
    cancel_requested: bool
    queue_job_id: int | None
    checkpoint: dict[str, Any] = field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobStore(Protocol):
    async def create(self, record: JobRecord) -> None: ...

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        """Any job (workers and the runner; no row-level security)."""
        ...

    async def claim(self, job_id: uuid.UUID, attempt: int) -> JobRecord | None:
        """Mark a queued or running job running for ``attempt``; None when it is final or
        cancelled."""
        ...

    async def update(self, job_id: uuid.UUID, **fields: Any) -> bool:
        """Set fields of a job that is not final yet; False when it is final."""
        ...

    async def progress(self, job_id: uuid.UUID, progress: float, stage: str) -> bool:
        """Record progress; returns whether the user asked to cancel."""
        ...

    async def save_checkpoint(self, job_id: uuid.UUID, name: str, value: Any) -> None: ...

    async def finish(self, job_id: uuid.UUID, status: JobStatus, **fields: Any) -> bool:
        """Move a job to a final status once; False when it was already final."""
        ...

    async def request_cancel(self, job_id: uuid.UUID, user_id: str) -> JobRecord | None:
        """Flag the caller's unfinished job for cancellation; None when there is none."""
        ...

    async def stuck(self, idle_s: float, limit: int) -> list[JobRecord]:
        """Unfinished jobs idle for ``idle_s`` that the queue no longer has waiting or
        running (never queued, or their queue entry ended without finishing them)."""
        ...


# -- Voices -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceClone:
    id: uuid.UUID
    user_id: str
    name: str
    description: str | None
    provider: str
    provider_voice_id: str
    sample_count: int
    job_id: uuid.UUID | None
    created_at: datetime


class VoiceStore(Protocol):
    async def add(self, voice: VoiceClone) -> VoiceClone:
        """Record a clone; idempotent by ``job_id`` (returns the one already recorded)."""
        ...

    async def list_for(self, user_id: str) -> list[VoiceClone]: ...

    async def get_for(self, user_id: str, voice_id: uuid.UUID) -> VoiceClone | None: ...

    async def delete(self, user_id: str, voice_id: uuid.UUID) -> bool: ...

"""What the operations share: providers, limits, the media source of a request, and the
transcription pipeline used by subtitles and dubbing."""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ai.audio import SPEECH_BYTES_PER_S, cut, detect_silences, extract_audio, probe
from ai.errors import InvalidInput, ProviderNotConfigured
from ai.jobs.context import JobContext
from ai.media import key_of
from ai.ports import (
    ImageModel,
    SpeechSynthesizer,
    TextModel,
    Transcriber,
    VoiceCloner,
    VoiceStore,
)
from ai.segments import Segment, Span, place_segments, plan_chunks, speech_regions
from ai.text_safety import clean_text
from ai.usage import Usage
from billing.prices import Meter
from billing.wording import count
from crdt.timeline import AssetKind, Timeline

__all__ = [
    "Limits",
    "Providers",
    "Source",
    "job_tag",
    "resolve_source",
    "transcribe_source",
    "transcription_estimate",
]

# Room for MP3 headers and frame padding under the provider's upload limit.
_UPLOAD_HEADROOM: Final = 0.9


@dataclass(frozen=True, slots=True)
class Limits:
    prompt_chars_max: int = 2000
    media_duration_ms_max: int = 60 * 60 * 1000
    upload_bytes_max: int = 25 * 1024 * 1024
    # Speech regions sent one by one to models without segment timestamps.
    region_ms_max: int = 15_000
    voice_sample_bytes_max: int = 10 * 1024 * 1024
    voice_samples_max: int = 5
    voice_sample_ms_min: int = 1_000
    voice_total_ms_max: int = 10 * 60 * 1000
    translate_batch_chars_max: int = 6000


@dataclass(frozen=True, slots=True)
class Providers:
    """The configured providers; a missing one is ``ProviderNotConfigured`` when needed."""

    text: TextModel | None = None
    transcriber: Transcriber | None = None
    images: ImageModel | None = None
    speech: SpeechSynthesizer | None = None
    cloner: VoiceCloner | None = None
    voices: VoiceStore | None = None

    def need_text(self) -> TextModel:
        if self.text is None:
            raise ProviderNotConfigured("openai", "OPENAI_API_KEY")
        return self.text

    def need_transcriber(self) -> Transcriber:
        if self.transcriber is None:
            raise ProviderNotConfigured("openai", "OPENAI_API_KEY")
        return self.transcriber

    def need_images(self) -> ImageModel:
        if self.images is None:
            raise ProviderNotConfigured("openai", "OPENAI_API_KEY")
        return self.images

    def need_speech(self) -> SpeechSynthesizer:
        if self.speech is None:
            raise ProviderNotConfigured("elevenlabs", "ELEVENLABS_API_KEY")
        return self.speech

    def need_cloner(self) -> VoiceCloner:
        if self.cloner is None:
            raise ProviderNotConfigured("elevenlabs", "ELEVENLABS_API_KEY")
        return self.cloner


def job_tag(job_id: uuid.UUID) -> str:
    """The prefix of every id a job writes into the document: deterministic, so a delivery
    that runs twice finds its own work instead of adding it again."""
    return f"ai{job_id.hex[:20]}"


@dataclass(frozen=True, slots=True)
class Source:
    """The media a request works on: a window of an asset, placed at ``offset_ms``."""

    asset_id: str
    clip_id: str | None
    key: str
    window_start_ms: int
    duration_ms: int
    offset_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "clip_id": self.clip_id,
            "key": self.key,
            "window_start_ms": self.window_start_ms,
            "duration_ms": self.duration_ms,
            "offset_ms": self.offset_ms,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Source:
        return cls(
            asset_id=str(value["asset_id"]),
            clip_id=value.get("clip_id"),
            key=str(value["key"]),
            window_start_ms=int(value["window_start_ms"]),
            duration_ms=int(value["duration_ms"]),
            offset_ms=int(value["offset_ms"]),
        )

    @property
    def seconds(self) -> int:
        return max(1, math.ceil(self.duration_ms / 1000))


def resolve_source(
    timeline: Timeline,
    project_id: uuid.UUID,
    *,
    clip_id: str | None,
    asset_id: str | None,
    limits: Limits,
) -> Source:
    """The audio source named by a request, checked against the live timeline.

    Only media stored by this service under the project's own prefix is accepted: a
    collaborator can write any URI into the document, and the job must not be able to read
    another project's media or reach an arbitrary URL.
    """
    if (clip_id is None) == (asset_id is None):
        raise InvalidInput("give exactly one of clip_id and asset_id", code="invalid_source")
    clip = timeline.clip(clip_id) if clip_id is not None else None
    if clip_id is not None:
        if clip is None or clip.asset is None:
            raise InvalidInput("no such clip with media on the timeline", code="invalid_source")
        asset_id = clip.asset
    assert asset_id is not None
    asset = timeline.asset(asset_id)
    if asset is None:
        raise InvalidInput("no such asset", code="invalid_source")
    if asset.kind not in (AssetKind.AUDIO, AssetKind.VIDEO):
        raise InvalidInput("the asset has no audio", code="invalid_source")
    key = key_of(asset.uri)
    if key is None or not key.startswith(f"projects/{project_id}/"):
        raise InvalidInput("the asset is not media stored for this project", code="invalid_source")
    if clip is not None:
        window_start, duration, offset = clip.source_in_ms, clip.duration_ms, clip.start_ms
    else:
        if asset.duration_ms is None:
            raise InvalidInput("the asset has no known duration", code="invalid_source")
        window_start, duration, offset = 0, asset.duration_ms, 0
    if duration > limits.media_duration_ms_max:
        raise InvalidInput(
            f"media longer than {count(limits.media_duration_ms_max // 60000, 'minute')}",
            code="media_too_long",
        )
    return Source(asset_id, clip_id, key, window_start, duration, offset)


def _segments_json(segments: list[Segment]) -> list[list[Any]]:
    return [[s.start_ms, s.end_ms, s.text] for s in segments]


def _segments(value: Any) -> list[Segment]:
    return [Segment(int(a), int(b), str(t)) for a, b, t in value]


async def transcribe_source(
    ctx: JobContext,
    transcriber: Transcriber,
    source: Source,
    *,
    language: str | None,
    limits: Limits,
    progress_to: float,
) -> list[Segment]:
    """Transcribe a source; segments come back placed on the timeline.

    The audio is extracted from the window, cut into chunks under the upload limit (cut in
    silences), and each chunk's segments are shifted by where the chunk starts. Models without
    timestamps are sent one speech region at a time, each region becoming a segment.
    """
    original = ctx.workdir / "source"
    await ctx.media.get_file(source.key, original)
    speech = ctx.workdir / "speech.mp3"
    await extract_audio(
        original, speech, start_ms=source.window_start_ms, duration_ms=source.duration_ms
    )
    info = await probe(speech)
    duration_ms = min(info.duration_ms or source.duration_ms, source.duration_ms)
    silences = await detect_silences(speech, duration_ms)
    if transcriber.returns_segments:
        bytes_max = limits.upload_bytes_max * _UPLOAD_HEADROOM
        chunk_ms = max(1000, int(bytes_max / SPEECH_BYTES_PER_S * 1000))
        pieces = plan_chunks(duration_ms, silences, chunk_ms_max=chunk_ms)
    else:
        pieces = speech_regions(duration_ms, silences, window_ms_max=limits.region_ms_max)
    found: list[Segment] = []
    for i, piece in enumerate(pieces):
        run = functools.partial(_transcribe_piece, ctx, transcriber, speech, piece, i, language)
        found += _segments(await ctx.step(f"transcribe:{i:04d}", run))
        await ctx.progress(progress_to * (i + 1) / len(pieces), "transcribing")
    return place_segments(found, offset_ms=source.offset_ms, window_ms=duration_ms)


async def _transcribe_piece(
    ctx: JobContext,
    transcriber: Transcriber,
    speech: Path,
    piece: Span,
    index: int,
    language: str | None,
) -> tuple[list[list[Any]], Usage]:
    path = ctx.workdir / f"piece-{index:04d}.mp3"
    await cut(speech, path, piece)
    transcript = await transcriber.transcribe(
        path, duration_ms=piece.duration_ms, language=language
    )
    if transcriber.returns_segments:
        local = [
            Segment(piece.start_ms + s.start_ms, piece.start_ms + s.end_ms, s.text)
            for s in transcript.segments
        ]
    else:
        local = [Segment(piece.start_ms, piece.end_ms, transcript.text)]
    cleaned = [Segment(s.start_ms, s.end_ms, clean_text(s.text)) for s in local]
    return _segments_json(cleaned), transcript.usage


def transcription_estimate(transcriber: Transcriber, source: Source) -> Usage:
    return Usage.of(transcriber.product, Meter.AUDIO_SECONDS, source.seconds)

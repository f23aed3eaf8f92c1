"""Subtitles: transcribe a clip or asset and add a subtitle track, one clip per segment."""

from __future__ import annotations

from typing import Any, Final

from ai.jobs.context import JobContext, JobKind, Outcome
from ai.operations.common import (
    Limits,
    Providers,
    Source,
    job_tag,
    transcribe_source,
    transcription_estimate,
)
from ai.segments import Segment
from ai.usage import Usage
from crdt.timeline import ClipKind, TrackKind, add_clip, add_track, read_timeline

__all__ = ["KIND", "estimate", "job_kind", "write_subtitle_track"]

KIND: Final = "ai.subtitles"


def estimate(providers: Providers, source: Source) -> Usage:
    return transcription_estimate(providers.need_transcriber(), source)


def write_subtitle_track(doc: Any, track_id: str, name: str, segments: list[Segment]) -> None:
    """Add the track and its clips in one transaction; nothing if the track already exists."""
    if read_timeline(doc).track(track_id) is not None:
        return
    with doc.transaction():
        add_track(doc, TrackKind.SUBTITLE, name, track_id=track_id)
        for i, seg in enumerate(segments):
            add_clip(
                doc,
                track_id,
                ClipKind.SUBTITLE,
                start_ms=seg.start_ms,
                duration_ms=seg.end_ms - seg.start_ms,
                text=seg.text,
                clip_id=f"{track_id}-{i:04d}",
            )


def job_kind(providers: Providers, limits: Limits) -> JobKind:
    async def handle(ctx: JobContext) -> Outcome:
        source = Source.from_json(ctx.job.input["source"])
        language = ctx.job.input.get("language")
        segments = await transcribe_source(
            ctx,
            providers.need_transcriber(),
            source,
            language=language,
            limits=limits,
            progress_to=0.95,
        )
        track_id = f"{job_tag(ctx.job.id)}-subtitles"
        name = f"Subtitles ({language})" if language else "Subtitles"

        async def deliver() -> None:
            await ctx.rooms.edit(
                ctx.project_id, lambda doc: write_subtitle_track(doc, track_id, name, segments)
            )

        result = {"track_id": track_id, "segments": len(segments), "language": language}
        return Outcome(result=result, usage=ctx.usage(), deliver=deliver)

    return JobKind(KIND, handle)

"""Planning audio into upload chunks and placing transcript segments in time (pure).

Times are integer milliseconds. ``silences`` are the quiet spans ffmpeg's ``silencedetect``
reports; cutting inside them keeps words whole across chunk boundaries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Segment",
    "Span",
    "parse_silences",
    "place_segments",
    "plan_chunks",
    "speech_regions",
]

_SILENCE_START = re.compile(r"silence_start:\s*(-?[0-9.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(-?[0-9.]+)")


@dataclass(frozen=True, slots=True)
class Span:
    start_ms: int
    end_ms: int

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of transcript: text said between two times."""

    start_ms: int
    end_ms: int
    text: str


def parse_silences(ffmpeg_log: str, duration_ms: int) -> list[Span]:
    """The silences in a ``silencedetect`` log; one still open at the end closes at the end."""
    spans: list[Span] = []
    start: int | None = None
    for line in ffmpeg_log.splitlines():
        if (m := _SILENCE_START.search(line)) is not None:
            start = max(0, round(float(m[1]) * 1000))
        elif (m := _SILENCE_END.search(line)) is not None and start is not None:
            spans.append(Span(start, min(duration_ms, round(float(m[1]) * 1000))))
            start = None
    if start is not None and start < duration_ms:
        spans.append(Span(start, duration_ms))
    return [s for s in spans if s.end_ms > s.start_ms]


def speech_regions(
    duration_ms: int, silences: Sequence[Span], *, window_ms_max: int, min_ms: int = 200
) -> list[Span]:
    """The sounding spans between silences, each at most ``window_ms_max`` long.

    Used with transcription models that return no timestamps: each region is sent on its own
    and becomes one segment, so the subtitles still follow the speech.
    """
    regions: list[Span] = []
    cursor = 0
    for silence in sorted(silences, key=lambda s: s.start_ms):
        if silence.start_ms - cursor >= min_ms:
            regions.append(Span(cursor, silence.start_ms))
        cursor = max(cursor, silence.end_ms)
    if duration_ms - cursor >= min_ms:
        regions.append(Span(cursor, duration_ms))
    out: list[Span] = []
    for region in regions:
        pieces = max(1, math.ceil(region.duration_ms / window_ms_max))
        step = math.ceil(region.duration_ms / pieces)
        for i in range(pieces):
            start = region.start_ms + i * step
            out.append(Span(start, min(region.end_ms, start + step)))
    return out


def plan_chunks(duration_ms: int, silences: Sequence[Span], *, chunk_ms_max: int) -> list[Span]:
    """Cover ``[0, duration_ms)`` with chunks of at most ``chunk_ms_max``, cut in silences.

    Each cut is the middle of the latest silence in the window (ignoring its first quarter,
    so chunks do not become tiny); when there is none, the chunk is cut at its maximum length.
    """
    if chunk_ms_max <= 0:
        raise ValueError("chunk_ms_max must be positive")
    midpoints = sorted((s.start_ms + s.end_ms) // 2 for s in silences)
    chunks: list[Span] = []
    start = 0
    while start < duration_ms:
        limit = start + chunk_ms_max
        if limit >= duration_ms:
            chunks.append(Span(start, duration_ms))
            break
        cuts = [m for m in midpoints if start + chunk_ms_max // 4 < m <= limit]
        end = cuts[-1] if cuts else limit
        chunks.append(Span(start, end))
        start = end
    return chunks


def place_segments(
    segments: Iterable[Segment], *, offset_ms: int, window_ms: int, min_ms: int = 100
) -> list[Segment]:
    """Segments relative to a source window moved to ``offset_ms`` on the timeline.

    Segments are clamped to the window, sorted, made non-overlapping (a segment ends where
    the next begins) and dropped when empty or shorter than ``min_ms``.
    """
    clamped = []
    for seg in segments:
        start = max(0, min(seg.start_ms, window_ms))
        end = max(0, min(seg.end_ms, window_ms))
        text = " ".join(seg.text.split())
        if text and end - start >= min_ms:
            clamped.append(Segment(start, end, text))
    clamped.sort(key=lambda s: (s.start_ms, s.end_ms))
    placed: list[Segment] = []
    for i, seg in enumerate(clamped):
        end = min(seg.end_ms, clamped[i + 1].start_ms) if i + 1 < len(clamped) else seg.end_ms
        if end - seg.start_ms >= min_ms:
            placed.append(Segment(offset_ms + seg.start_ms, offset_ms + end, seg.text))
    return placed

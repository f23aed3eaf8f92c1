"""SRT and WebVTT export of subtitle cues (pure): the one subtitle writer of the product, used
by the subtitle export route and by the local renderer for subtitle streams
(``render.ffmpeg_command``; ``render`` imports ``ai``, never the reverse).

Cues come from a subtitle track of the timeline, which collaborators edit freely, so the
writer normalises what it is given: cues are sorted by start, cues with no text or no length
are skipped (numbering stays consecutive), and text that would break the format is rewritten
rather than emitted as is: every line break a reader may honour (``str.splitlines``: CR, LF,
CRLF, NEL, U+2028 ...) becomes LF and blank lines are dropped (a blank line ends a cue), and
arrows (``-->``, ``--->`` ...) become ``->`` (a line with ``-->`` is a timing line).
Timestamps are ``HH:MM:SS,mmm`` in SRT and ``HH:MM:SS.mmm`` in WebVTT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Cue", "to_srt", "to_vtt"]


@dataclass(frozen=True, slots=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def _timestamp(ms: int, separator: str) -> str:
    ms = max(0, ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


_ARROW = re.compile(r"-{2,}>")


def _lines(text: str) -> str:
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(_ARROW.sub("->", line) for line in lines if line)


def _normalised(cues: Iterable[Cue]) -> list[Cue]:
    out = []
    for cue in sorted(cues, key=lambda c: (c.start_ms, c.end_ms)):
        text = _lines(cue.text)
        if text and cue.end_ms > cue.start_ms >= 0:
            out.append(Cue(cue.start_ms, cue.end_ms, text))
    return out


def to_srt(cues: Iterable[Cue]) -> str:
    blocks = [
        f"{n}\n{_timestamp(c.start_ms, ',')} --> {_timestamp(c.end_ms, ',')}\n{c.text}\n"
        for n, c in enumerate(_normalised(cues), start=1)
    ]
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    # "&" and "<" start entities and tags in WebVTT cue text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Iterable[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    blocks += [
        f"{_timestamp(c.start_ms, '.')} --> {_timestamp(c.end_ms, '.')}\n{_vtt_text(c.text)}\n"
        for c in _normalised(cues)
    ]
    return "\n".join(blocks)

"""Reading what ffmpeg prints (pure): the media summary of ``ffmpeg -i FILE`` (duration,
streams, picture size), the ``-progress`` key=value stream, and the CPU time ``-benchmark``
reports. ``render.ffmpeg_local`` feeds these from the running process; tests feed them text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MediaInfo", "ProgressParser", "parse_cpu_seconds", "parse_media_info"]


# --- Media summary ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration_ms: int | None
    video: tuple[str, ...] = ()  # codec of each video stream
    audio: tuple[str, ...] = ()
    subtitle: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)


_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2})\.(\d+)")
_STREAM = re.compile(r"Stream #\d+:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle): (\w+)")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})[, \[]")


def parse_media_info(text: str) -> MediaInfo:
    """The first input's duration and streams from what ``ffmpeg -i FILE`` prints."""
    duration_ms = None
    if match := _DURATION.search(text):
        hours, minutes, seconds, fraction = match.groups()
        duration_ms = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000 + round(
            int(fraction) * 1000 / 10 ** len(fraction)
        )
    streams: dict[str, list[str]] = {"Video": [], "Audio": [], "Subtitle": []}
    width = height = None
    for line in text.splitlines():
        if "Output #" in line:
            break
        if match := _STREAM.search(line):
            kind, codec = match.groups()
            streams[kind].append(codec)
            if kind == "Video" and width is None and (size := _SIZE.search(line)):
                width, height = int(size.group(1)), int(size.group(2))
    return MediaInfo(
        duration_ms,
        tuple(streams["Video"]),
        tuple(streams["Audio"]),
        tuple(streams["Subtitle"]),
        width,
        height,
    )


# --- Progress ---------------------------------------------------------------------------------


class ProgressParser:
    """Reads ffmpeg's ``-progress`` key=value lines; each block ends with ``progress=``."""

    def __init__(self, duration_ms: int) -> None:
        self._duration_us = max(1, duration_ms * 1000)
        self._out_time_us = 0
        self.done = False

    def feed(self, line: str) -> float | None:
        """The fraction done when ``line`` closes a block, else None."""
        key, _, value = line.strip().partition("=")
        if key == "out_time_us":
            with contextlib.suppress(ValueError):
                self._out_time_us = max(self._out_time_us, int(value))
        elif key == "progress":
            self.done = value == "end"
            return 1.0 if self.done else min(0.999, self._out_time_us / self._duration_us)
        return None


_BENCH = re.compile(r"bench: utime=([\d.]+)s stime=([\d.]+)s rtime=([\d.]+)s")


def parse_cpu_seconds(lines: Sequence[str]) -> float | None:
    """CPU seconds (user + system) ffmpeg reports with ``-benchmark``."""
    for line in reversed(lines):
        if match := _BENCH.search(line):
            return float(match.group(1)) + float(match.group(2))
    return None

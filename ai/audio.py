"""Audio work through ffmpeg (the binary shipped in the ``imageio-ffmpeg`` wheel).

Every call is a subprocess with a timeout; user media that ffmpeg cannot decode is
``InvalidInput``, never a crash. Speech is kept as mono 16 kHz MP3 at 32 kbit/s: good enough
for recognition and small (4 kB/s, so a 25 MB upload limit holds over 100 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import anyio

from ai.errors import InvalidInput
from ai.segments import Span, parse_silences

__all__ = [
    "SPEECH_BYTES_PER_S",
    "MediaInfo",
    "cut",
    "detect_silences",
    "extract_audio",
    "ffmpeg_exe",
    "fit_duration",
    "probe",
]

SPEECH_BITRATE_KBPS: Final = 32
SPEECH_BYTES_PER_S: Final = SPEECH_BITRATE_KBPS * 1000 // 8
SPEECH_SAMPLE_RATE: Final = 16_000
FFMPEG_TIMEOUT_S: Final = 600.0
LOG_BYTES_MAX: Final = 4 * 1024 * 1024
# atempo accepts 0.5 to 2.0 per filter; faster than 2x is no longer intelligible speech.
TEMPO_MAX: Final = 2.0

_DURATION = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Audio|Video):")


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg  # type: ignore[import-untyped]

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration_ms: int | None
    has_audio: bool
    has_video: bool


async def _run(args: list[str], *, timeout_s: float = FFMPEG_TIMEOUT_S) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    code = proc.returncode if proc.returncode is not None else -1
    return code, stderr[-LOG_BYTES_MAX:].decode("utf-8", "replace")


async def _ffmpeg(args: list[str], what: str) -> str:
    code, log = await _run(["-y", *args])
    if code != 0:
        last = log.strip().splitlines()[-1:] or ["no output"]
        raise InvalidInput(f"could not {what}: {last[0][:200]}", code="media_undecodable")
    return log


async def probe(path: Path) -> MediaInfo:
    """Duration and stream kinds of a media file (``ffmpeg -i``, which exits 1 by design)."""
    _, log = await _run(["-i", str(path)], timeout_s=60)
    if "Invalid data found" in log or "could not find codec" in log.lower():
        raise InvalidInput("the file is not a media file we can decode", code="media_undecodable")
    kinds = set(_STREAM.findall(log))
    duration_ms = None
    if (m := _DURATION.search(log)) is not None:
        hours, minutes, seconds = int(m[1]), int(m[2]), float(m[3])
        duration_ms = round((hours * 3600 + minutes * 60 + seconds) * 1000)
    return MediaInfo(duration_ms, "Audio" in kinds, "Video" in kinds)


def _window(start_ms: int, duration_ms: int | None) -> list[str]:
    args = ["-ss", f"{start_ms / 1000:.3f}"] if start_ms else []
    if duration_ms is not None:
        args += ["-t", f"{duration_ms / 1000:.3f}"]
    return args


async def extract_audio(
    src: Path, dst: Path, *, start_ms: int = 0, duration_ms: int | None = None
) -> None:
    """The audio of ``src`` (audio or video) between two times, as speech MP3 in ``dst``."""
    await _ffmpeg(
        [
            *_window(start_ms, duration_ms),
            "-i",
            str(src),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(SPEECH_SAMPLE_RATE),
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{SPEECH_BITRATE_KBPS}k",
            str(dst),
        ],
        "extract the audio",
    )


async def cut(src: Path, dst: Path, span: Span) -> None:
    """``span`` of a speech MP3, re-encoded so the piece starts on a frame of its own."""
    await extract_audio(src, dst, start_ms=span.start_ms, duration_ms=span.duration_ms)


async def detect_silences(
    path: Path, duration_ms: int, *, noise_db: int = -35, min_silence_ms: int = 400
) -> list[Span]:
    log = await _ffmpeg(
        [
            "-i",
            str(path),
            "-af",
            f"silencedetect=noise={noise_db}dB:d={min_silence_ms / 1000:.3f}",
            "-f",
            "null",
            "-",
        ],
        "analyse the audio",
    )
    return parse_silences(log, duration_ms)


async def fit_duration(src: Path, dst: Path, *, duration_ms: int, target_ms: int) -> int:
    """Speed speech up so it lasts at most ``target_ms`` (up to ``TEMPO_MAX``); returns the
    new duration. Audio that already fits is copied unchanged."""
    if duration_ms <= target_ms or target_ms <= 0:
        await anyio.to_thread.run_sync(shutil.copyfile, src, dst)
        return duration_ms
    tempo = min(TEMPO_MAX, duration_ms / target_ms)
    await _ffmpeg(
        ["-i", str(src), "-filter:a", f"atempo={tempo:.4f}", "-c:a", "libmp3lame", str(dst)],
        "retime the speech",
    )
    info = await probe(dst)
    return info.duration_ms or round(duration_ms / tempo)

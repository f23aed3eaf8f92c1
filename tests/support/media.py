"""Small media files made with ffmpeg's lavfi sources, and checks of rendered output."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from render.ffmpeg_local import MediaInfo, ffmpeg_exe, parse_media_info

SIZE = "320x180"


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=60,
    )


def color_video(path: Path, color: str, seconds: float, *, tone_hz: int | None = None) -> Path:
    """A plain-colour video, with a sine tone as its sound when ``tone_hz`` is given."""
    args = ["-f", "lavfi", "-i", f"color=c={color}:s={SIZE}:r=25:d={seconds}"]
    if tone_hz is not None:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:duration={seconds}"]
        args += ["-c:a", "aac", "-shortest"]
    _ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def pattern_video(path: Path, seconds: float) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=s={SIZE}:r=25:d={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def still(path: Path, color: str) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"color=c={color}:s={SIZE}", "-frames:v", "1", str(path))
    return path


def tone(path: Path, hz: int, seconds: float) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={hz}:duration={seconds}", str(path))
    return path


def info(path: Path) -> MediaInfo:
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return parse_media_info(result.stderr)


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    rgb: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        offset = (y * self.width + x) * 3
        r, g, b = self.rgb[offset : offset + 3]
        return r, g, b


def frame_at(path: Path, seconds: float, width: int, height: int) -> Frame:
    """The decoded frame shown at ``seconds``, as RGB."""
    result = subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
            "-ss", f"{seconds}", "-i", str(path), "-frames:v", "1",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    assert len(result.stdout) == width * height * 3, len(result.stdout)
    return Frame(width, height, result.stdout)


def audio_level(path: Path, start_s: float, seconds: float) -> float:
    """Mean volume (dB) of a stretch of the file's sound, from ffmpeg's volumedetect."""
    result = subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-ss", f"{start_s}", "-t", f"{seconds}",
            "-i", str(path), "-vn", "-af", "volumedetect", "-f", "null", "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    for line in result.stderr.splitlines():
        if "mean_volume:" in line:
            return float(line.split("mean_volume:")[1].split("dB")[0])
    raise AssertionError(result.stderr[-500:])


def close(
    actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 40
) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))

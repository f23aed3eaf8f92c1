"""Small media files made with ffmpeg's lavfi sources, and checks of rendered output."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai.audio import ffmpeg_exe
from crdt import timeline as tl
from render.ffmpeg_output import MediaInfo, parse_media_info

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


RED = (255, 0, 0)
BLUE = (0, 0, 255)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)


def make_sample_media(folder: Path) -> dict[str, Path]:
    """The sources of ``write_sample``: two videos, a still and a tone."""
    return {
        "red": color_video(folder / "red.mp4", "red", 3, tone_hz=880),
        "pattern": pattern_video(folder / "pattern.mp4", 2),
        "blue": still(folder / "blue.png", "blue"),
        "tone": tone(folder / "tone.wav", 440, 4),
    }


def write_sample(doc: Any, uris: dict[str, str]) -> None:
    """Two video clips, an image, a tone and a subtitle track, 4.5 s at 320x180::

    0.0-1.0 red (from 0.5 s into a red clip with an 880 Hz tone)   tone 440 Hz 0.0-3.0
    1.0-2.0 test pattern (no sound)                                subtitles 0.2-1.7, 2.1-2.6
    2.0-3.0 black (nothing on the timeline)
    3.0-4.5 blue still image, on the overlay track; silence 3.0-4.5
    """
    tl.init_project(doc, "Sample", fps=25, width=320, height=180)
    tl.set_project_fields(doc, fps=25, width=320, height=180)
    v1 = tl.add_track(doc, "video", "V1", track_id="v1")
    v2 = tl.add_track(doc, "overlay", "V2", track_id="v2")
    a1 = tl.add_track(doc, "audio", "Music", track_id="a1")
    s1 = tl.add_track(doc, "subtitle", "English", track_id="s1")
    tl.add_asset(doc, "video", "red", uris["red"], duration_ms=3000, asset_id="red")
    tl.add_asset(doc, "video", "pattern", uris["pattern"], duration_ms=2000, asset_id="pattern")
    tl.add_asset(doc, "image", "blue", uris["blue"], asset_id="blue")
    tl.add_asset(doc, "audio", "tone", uris["tone"], duration_ms=4000, asset_id="tone")
    tl.add_clip(doc, v1, "video", start_ms=0, duration_ms=1000, asset="red", source_in_ms=500)
    tl.add_clip(doc, v1, "video", start_ms=1000, duration_ms=1000, asset="pattern")
    tl.add_clip(doc, v2, "image", start_ms=3000, duration_ms=1500, asset="blue")
    tl.add_clip(doc, a1, "audio", start_ms=0, duration_ms=3000, asset="tone", volume=0.5)
    tl.add_clip(doc, s1, "subtitle", start_ms=200, duration_ms=1500, text="Hello there")
    tl.add_clip(doc, s1, "subtitle", start_ms=2100, duration_ms=500, text="In the dark")


def check_sample_render(path: Path, *, subtitle_stream: bool) -> None:
    """The rendered sample: duration, streams, a frame per section, sound and silence."""
    found = info(path)
    assert found.duration_ms is not None and abs(found.duration_ms - 4500) <= 100, found
    subtitles = ("mov_text",) if subtitle_stream else ()
    assert (found.video, found.audio, found.subtitle) == (("h264",), ("aac",), subtitles)
    assert (found.width, found.height) == (320, 180)
    assert close(frame_at(path, 0.5, 320, 180).pixel(160, 90), RED)
    assert not close(frame_at(path, 1.5, 320, 180).pixel(160, 90), BLACK)  # the pattern
    assert close(frame_at(path, 2.5, 320, 180).pixel(160, 90), BLACK)
    assert close(frame_at(path, 3.5, 320, 180).pixel(160, 90), BLUE)
    level = audio_level(path, 1.2, 1.5)  # the tone alone, at half volume
    assert -40 < level < audio_level(path, 0.2, 0.6)  # plus the red clip's own sound
    assert audio_level(path, 3.2, 1.0) < -80  # silence where nothing plays

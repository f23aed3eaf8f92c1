"""Local render speed: seconds of output per second of wall time, for a 60 s 1080p timeline.

The timeline is what a short edited video looks like: six 10-second 1080p clips cut back to
back on the main track (each trimmed 1 s in), a logo image over 20 s of it, a music track at
half volume under the whole minute, and 30 burned-in subtitles. Sources are made with
ffmpeg's lavfi (test pattern, moving colour bars, sine tones) before the clock starts. Each
preset is rendered once by default; the figure is output seconds / wall seconds (above 1 is
faster than real time), with the CPU seconds ffmpeg reported.

    python -m bench.render_bench [--presets ultrafast,veryfast] [--seconds 60] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc

from ai.audio import ffmpeg_exe
from crdt import timeline as tl
from render.ffmpeg_local import LocalRenderer
from render.spec import RenderOptions, RenderSpec, build_spec

CLIP_S = 10
SECONDS_MAX = 600


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=600,
    )


def make_sources(folder: Path, clips: int) -> dict[str, Path]:
    sources = {}
    patterns = ["testsrc2", "smptehdbars", "rgbtestsrc", "testsrc", "pal100bars", "yuvtestsrc"]
    for n in range(clips):
        path = folder / f"clip{n}.mp4"
        pattern = patterns[n % len(patterns)]
        _ffmpeg(
            "-f", "lavfi", "-i", f"{pattern}=s=1920x1080:r=30:d={CLIP_S + 2}",
            "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * n}:duration={CLIP_S + 2}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(path),
        )  # fmt: skip
        sources[f"clip{n}"] = path
    logo = folder / "logo.png"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=480x270", "-frames:v", "1", str(logo))
    music = folder / "music.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:duration=" + str(clips * CLIP_S + 1),
            "-c:a", "aac", str(music))  # fmt: skip
    sources["logo"] = logo
    sources["music"] = music
    return sources


def build_timeline(sources: dict[str, Path], seconds: int) -> Doc[Any]:
    doc = tl.new_project_doc("Benchmark", fps=30, width=1920, height=1080)
    main = tl.add_track(doc, "video", "Main")
    overlay = tl.add_track(doc, "overlay", "Logo")
    music = tl.add_track(doc, "audio", "Music")
    subs = tl.add_track(doc, "subtitle", "English")
    clips = seconds // CLIP_S
    for n in range(clips):
        asset = tl.add_asset(
            doc, "video", f"clip {n}", str(sources[f"clip{n}"]), duration_ms=(CLIP_S + 2) * 1000
        )
        tl.add_clip(doc, main, "video", start_ms=n * CLIP_S * 1000, duration_ms=CLIP_S * 1000,
                    asset=asset, source_in_ms=1000)  # fmt: skip
    logo = tl.add_asset(doc, "image", "logo", str(sources["logo"]))
    tl.add_clip(doc, overlay, "image", start_ms=5000, duration_ms=20_000, asset=logo)
    song = tl.add_asset(doc, "audio", "music", str(sources["music"]))
    tl.add_clip(doc, music, "audio", start_ms=0, duration_ms=seconds * 1000, asset=song,
                volume=0.5)  # fmt: skip
    for n in range(seconds // 2):
        tl.add_clip(doc, subs, "subtitle", start_ms=n * 2000, duration_ms=1800,
                    text=f"Subtitle line number {n + 1}")  # fmt: skip
    return doc


async def render_once(spec: RenderSpec, preset: str, folder: Path) -> tuple[float, float]:
    out = folder / f"out-{preset}.mp4"
    renderer = LocalRenderer(preset=preset)
    started = time.perf_counter()
    result = await renderer.render(spec, out)
    wall = time.perf_counter() - started
    out.unlink()
    return wall, result.cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="ultrafast,veryfast")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    seconds = max(CLIP_S, min(args.seconds, SECONDS_MAX)) // CLIP_S * CLIP_S
    rounds = max(1, min(args.rounds, 5))
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        folder = Path(tmp)
        print(f"making {seconds // CLIP_S} 1080p source clips ...", flush=True)
        sources = make_sources(folder, seconds // CLIP_S)
        spec = build_spec(tl.read_timeline(build_timeline(sources, seconds)), RenderOptions())
        print(f"{os.cpu_count()} CPUs; {seconds} s of 1920x1080 at 30 fps, H.264 + AAC, "
              f"subtitles burned in")  # fmt: skip
        print("| preset | wall s | CPU s | output s per wall s |")
        print("|---|---:|---:|---:|")
        for preset in args.presets.split(","):
            best_wall, cpu = min(
                asyncio.run(render_once(spec, preset, folder)) for _ in range(rounds)
            )
            print(f"| {preset} | {best_wall:.1f} | {cpu:.1f} | {seconds / best_wall:.2f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

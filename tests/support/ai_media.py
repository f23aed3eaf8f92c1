"""The 30-second test clip for the AI tests: a small test-pattern video whose sound is tone
bursts at known times, separated by silence, so a transcription can be checked against it.

With ``espeak-ng`` installed, a spoken phrase is mixed into the start of each burst (the fake
transcriber hears sound, not words, so both clips give the same timings).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ai.audio import ffmpeg_exe

CLIP_SECONDS = 30
# (start, end) of each burst of sound, in seconds.
BURSTS = [(1.0, 3.5), (5.0, 8.0), (10.0, 12.5), (15.0, 18.0), (20.0, 22.5), (25.0, 28.0)]


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=120,
    )


def make_test_clip(path: Path) -> Path:
    gate = "+".join(f"between(t,{a},{b})" for a, b in BURSTS)
    inputs = [
        "-f", "lavfi", "-i", f"testsrc=size=160x90:rate=10:duration={CLIP_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={CLIP_SECONDS}:sample_rate=16000",
    ]  # fmt: skip
    audio_filter = f"[1:a]volume=0:enable='not({gate})'[a]"
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        speech = path.with_suffix(".speech.wav")
        subprocess.run(
            [espeak, "-s", "190", "-w", str(speech), "Hello from FlowAI."],
            check=True,
            timeout=60,
        )
        inputs += ["-i", str(speech)]
        n = len(BURSTS)
        split = f"[2:a]asplit={n}" + "".join(f"[s{i}]" for i in range(n))
        delays = [f"[s{i}]adelay={int(a * 1000)}:all=1[d{i}]" for i, (a, _) in enumerate(BURSTS)]
        mixed = "".join(f"[d{i}]" for i in range(n))
        audio_filter = ";".join(
            [
                f"[1:a]volume=0:enable='not({gate})'[t]",
                split,
                *delays,
                f"[t]{mixed}amix=inputs={n + 1}:duration=first:normalize=0[a]",
            ]
        )
    _ffmpeg(
        *inputs,
        "-filter_complex", audio_filter,
        "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest", str(path),
    )  # fmt: skip
    return path


def make_voice_sample(path: Path, seconds: float = 3.0) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}",
        "-c:a", "libmp3lame", "-b:a", "64k", str(path),
    )  # fmt: skip
    return path

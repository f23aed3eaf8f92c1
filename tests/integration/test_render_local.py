"""The local ffmpeg renderer on a small generated timeline: output checked frame by frame."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc

from crdt import timeline as tl
from render.errors import RenderCancelled, RenderFailed
from render.ffmpeg_local import LocalRenderer, render_cancellable
from render.progress import RenderProgress
from render.spec import OutputFormat, RenderOptions, RenderSpec, SubtitleMode, build_spec
from tests.support import media


def sample_timeline(folder: Path) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    paths = media.make_sample_media(folder)
    media.write_sample(doc, {name: path.as_uri() for name, path in paths.items()})
    return doc


def local_spec(doc: Doc[Any], **options: Any) -> RenderSpec:
    spec = build_spec(tl.read_timeline(doc), RenderOptions(**options))
    return spec.with_uris({k: uri.removeprefix("file://") for k, uri in spec.assets.items()})


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Doc[Any]:
    return sample_timeline(tmp_path_factory.mktemp("media"))


async def test_renders_pictures_sound_and_subtitle_stream(sample: Doc[Any], tmp_path: Path) -> None:
    spec = local_spec(sample, subtitles=SubtitleMode.STREAM)
    seen: list[RenderProgress] = []

    async def on_progress(progress: RenderProgress) -> None:
        seen.append(progress)

    out = tmp_path / "out.mp4"
    result = await LocalRenderer().render(spec, out, on_progress)

    assert result.size_bytes == out.stat().st_size > 0 and result.cpu_seconds > 0
    media.check_sample_render(out, subtitle_stream=True)
    assert seen[0].stage == "preparing" and seen[-1] == RenderProgress(1.0, "rendered")


async def test_burned_subtitles_draw_text_on_the_picture(sample: Doc[Any], tmp_path: Path) -> None:
    out = tmp_path / "burned.webm"
    spec = local_spec(sample, format=OutputFormat.WEBM, start_ms=2000, end_ms=3000)

    await LocalRenderer().render(spec, out)

    info = media.info(out)
    assert (info.video, info.audio, info.subtitle) == (("vp9",), ("opus",), ())
    assert info.duration_ms is not None and abs(info.duration_ms - 1000) <= 100
    # The range is the black gap; the second cue shows from 0.1 to 0.6 s into it.
    with_cue = media.frame_at(out, 0.3, 320, 180)
    without = media.frame_at(out, 0.8, 320, 180)
    bottom = [(x, y) for x in range(100, 220) for y in range(140, 175)]
    assert any(media.close(with_cue.pixel(x, y), media.WHITE, 30) for x, y in bottom)
    assert all(media.close(without.pixel(x, y), media.BLACK, 30) for x, y in bottom)


def _processes_writing(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(int(proc.name))
    return found


async def test_cancel_kills_ffmpeg_and_discards_the_file(tmp_path: Path) -> None:
    still = media.still(tmp_path / "green.png", "green")
    doc = tl.new_project_doc("Long", fps=25, width=640, height=360)
    track = tl.add_track(doc, "video", "V1")
    asset = tl.add_asset(doc, "image", "green", still.as_uri())
    tl.add_clip(doc, track, "image", start_ms=0, duration_ms=600_000, asset=asset)
    spec = local_spec(doc)
    cancelled = asyncio.Event()
    out = tmp_path / "long.mp4"

    async def on_progress(progress: RenderProgress) -> None:
        if progress.stage == "rendering" and progress.fraction > 0:
            assert _processes_writing(out)  # ffmpeg is running
            cancelled.set()

    with pytest.raises(RenderCancelled):
        await render_cancellable(LocalRenderer(), spec, out, cancelled, on_progress)

    assert cancelled.is_set()
    assert not out.exists()
    assert _processes_writing(out) == []


async def test_unreadable_media_fails_with_ffmpegs_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    doc = tl.new_project_doc("Broken", fps=25, width=320, height=180)
    track = tl.add_track(doc, "video", "V1")
    asset = tl.add_asset(doc, "video", "broken", broken.as_uri())
    tl.add_clip(doc, track, "video", start_ms=0, duration_ms=1000, asset=asset)
    out = tmp_path / "out.mp4"

    with pytest.raises(RenderFailed, match="ffmpeg exited with status") as info:
        await LocalRenderer().render(local_spec(doc), out)

    assert "broken.mp4" in str(info.value)
    assert not out.exists()

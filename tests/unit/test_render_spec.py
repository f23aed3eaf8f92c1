"""The render spec: derived from a timeline, every problem reported with its path."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Map

from crdt import timeline as tl
from render.errors import InvalidRender
from render.ffmpeg_command import ass_document, build_command
from render.ffmpeg_output import ProgressParser, parse_cpu_seconds, parse_media_info
from render.spec import (
    OutputFormat,
    RenderOptions,
    RenderSpec,
    SubtitleMode,
    build_spec,
    parse_resolution,
)


def _doc() -> tuple[Doc[Any], dict[str, str]]:
    doc = tl.new_project_doc("Trip", fps=25, width=1920, height=1080)
    ids = {
        "v1": tl.add_track(doc, "video", "V1", track_id="v1"),
        "v2": tl.add_track(doc, "overlay", "V2", track_id="v2"),
        "a1": tl.add_track(doc, "audio", "Music", track_id="a1"),
        "s1": tl.add_track(doc, "subtitle", "English", track_id="s1"),
    }
    tl.add_asset(doc, "video", "beach", "media/beach.mp4", duration_ms=10_000, asset_id="beach")
    tl.add_asset(doc, "image", "logo", "media/logo.png", asset_id="logo")
    tl.add_asset(doc, "audio", "song", "media/song.mp3", duration_ms=60_000, asset_id="song")
    return doc, ids


def _spec(doc: Doc[Any], **options: Any) -> RenderSpec:
    return build_spec(tl.read_timeline(doc), RenderOptions(**options))


def _problems(doc: Doc[Any], **options: Any) -> dict[str, str]:
    with pytest.raises(InvalidRender) as info:
        _spec(doc, **options)
    return {p.path: p.message for p in info.value.problems}


def test_spec_places_every_kind_of_clip() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=4000, asset="beach", source_in_ms=1000,
                clip_id="c1")  # fmt: skip
    tl.add_clip(doc, "v2", "image", start_ms=1000, duration_ms=2000, asset="logo", clip_id="c2")
    tl.add_clip(doc, "a1", "audio", start_ms=500, duration_ms=5000, asset="song", volume=0.4,
                clip_id="c3")  # fmt: skip
    tl.add_clip(doc, "s1", "subtitle", start_ms=100, duration_ms=900, text=" Hi ", clip_id="c4")
    tl.add_clip(doc, "v1", "title", start_ms=4000, duration_ms=1000, text="The end", clip_id="c5")

    spec = _spec(doc, resolution="720p")

    assert (spec.width, spec.height, spec.fps, spec.duration_ms) == (1280, 720, 25, 5500)
    assert [(v.clip_id, v.layer, v.source_in_ms) for v in spec.visuals] == [
        ("c1", 0, 1000),
        ("c2", 1, 0),
    ]
    assert [(a.clip_id, a.volume, a.from_video) for a in spec.audio] == [
        ("c1", 1.0, True),
        ("c3", 0.4, False),
    ]
    assert spec.subtitles[0].name == "English"
    assert spec.subtitles[0].cues[0].text == "Hi"
    assert [c.text for c in spec.titles] == ["The end"]
    assert spec.assets == {
        "beach": "media/beach.mp4",
        "logo": "media/logo.png",
        "song": "media/song.mp3",
    }
    props = spec.to_json()
    assert props["durationInFrames"] == 138
    assert props["visuals"][0]["src"] == "media/beach.mp4"


def test_range_cuts_clips_and_shifts_times() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=4000, asset="beach", clip_id="c1")
    tl.add_clip(doc, "v1", "video", start_ms=6000, duration_ms=2000, asset="beach", clip_id="c2")
    tl.add_clip(doc, "s1", "subtitle", start_ms=2500, duration_ms=1000, text="x", clip_id="c3")

    spec = _spec(doc, start_ms=3000, end_ms=7000)

    assert spec.duration_ms == 4000 and spec.range_start_ms == 3000
    c1, c2 = spec.visuals
    assert (c1.start_ms, c1.duration_ms, c1.source_in_ms) == (0, 1000, 3000)
    assert (c2.start_ms, c2.duration_ms, c2.source_in_ms) == (3000, 1000, 0)
    assert [(c.start_ms, c.duration_ms) for c in spec.subtitles[0].cues] == [(0, 500)]


def test_muted_track_keeps_pictures_and_drops_sound() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=1000, asset="beach")
    tl.add_clip(doc, "a1", "audio", start_ms=0, duration_ms=1000, asset="song")
    tl.set_track_flags(doc, "v1", muted=True)
    tl.set_track_flags(doc, "a1", muted=True)

    spec = _spec(doc)

    assert len(spec.visuals) == 1 and spec.audio == ()


def test_subtitles_none_drops_subtitle_tracks() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "s1", "subtitle", start_ms=0, duration_ms=1000, text="x")
    assert _spec(doc, subtitles=SubtitleMode.NONE).subtitles == ()


def test_every_problem_is_listed_with_its_path() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=3000, asset="beach", clip_id="a")
    # Overlaps "a" on the same track, and runs past the end of its 10 s asset.
    tl.add_clip(doc, "v1", "video", start_ms=2000, duration_ms=9000, asset="beach", clip_id="b",
                source_in_ms=5000)  # fmt: skip
    tl.add_clip(doc, "a1", "audio", start_ms=0, duration_ms=1000, clip_id="no_asset")
    tl.add_clip(doc, "a1", "subtitle", start_ms=2000, duration_ms=1000, text="x", clip_id="wrong")
    tl.add_clip(doc, "s1", "subtitle", start_ms=0, duration_ms=1000, clip_id="empty")
    tl.add_clip(doc, "v2", "image", start_ms=0, duration_ms=1000, asset="song", clip_id="kind")
    # A clip pointing at an asset that is not there (written by a client, not our writers).
    clips = doc.get(tl.ROOT_CLIPS, type=Map)
    clips["ghost"] = Map({"track": "v2", "kind": "video", "start_ms": 5000, "duration_ms": 100,
                          "asset": "gone"})  # fmt: skip

    problems = _problems(doc, resolution="999x1")

    assert set(problems) == {
        "clips/b/start_ms",
        "clips/b/duration_ms",
        "clips/no_asset/asset",
        "clips/wrong/kind",
        "clips/empty/text",
        "clips/kind/asset",
        "clips/ghost/asset",
        "options/resolution",
    }
    assert "overlaps clip 'a'" in problems["clips/b/start_ms"]
    assert "only 10000 ms long" in problems["clips/b/duration_ms"]
    assert "unknown asset 'gone'" in problems["clips/ghost/asset"]
    assert "cannot play audio asset 'song'" in problems["clips/kind/asset"]


def test_message_lists_problems() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=1000, clip_id="x")
    with pytest.raises(InvalidRender, match=r"\(1 problem\): clips/x/asset: a video clip needs"):
        _spec(doc)


def test_empty_timeline_and_bad_ranges() -> None:
    doc, _ = _doc()
    assert "timeline" in _problems(doc)
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=1000, asset="beach")
    assert "must be after" in _problems(doc, start_ms=500, end_ms=500)["options/range"]
    assert "after the timeline ends" in _problems(doc, start_ms=1000)["options/range"]
    assert ">= 0" in _problems(doc, start_ms=-1)["options/range"]


def test_harmless_reader_problems_do_not_block() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=1000, asset="beach")
    doc.get(tl.ROOT_PROJECT, type=Map)["title"] = 42
    assert _spec(doc).title == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("project", (1920, 1080)),
        ("720p", (1280, 720)),
        ("180p", (320, 180)),
        ("640x360", (640, 360)),
        (" 1080P ", (1920, 1080)),
    ],
)
def test_parse_resolution(text: str, expected: tuple[int, int]) -> None:
    assert parse_resolution(text, 1920, 1080) == expected


@pytest.mark.parametrize("text", ["4k", "641x360", "8192x8192", "721p", "10x10", ""])
def test_parse_resolution_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_resolution(text, 1920, 1080)


def test_vertical_project_keeps_its_aspect() -> None:
    assert parse_resolution("720p", 1080, 1920) == (404, 720)


# --- ffmpeg command (pure) --------------------------------------------------------------------


def test_command_trims_places_and_mixes() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=2000, asset="beach", source_in_ms=1500)
    tl.add_clip(doc, "v2", "image", start_ms=2500, duration_ms=1000, asset="logo")
    tl.add_clip(doc, "a1", "audio", start_ms=250, duration_ms=3000, asset="song", volume=0.5)
    tl.add_clip(doc, "s1", "subtitle", start_ms=0, duration_ms=1000, text="Hi")
    spec = _spec(doc, resolution="180p", subtitles=SubtitleMode.STREAM)

    command = build_command(spec, "/out/x.mp4", has_audio={"beach": False})
    args = " ".join(command.args)

    assert "-ss 1.500 -t 2.000 -i file:media/beach.mp4" in args
    assert "-framerate 25 -i file:media/logo.png" in args
    assert "-ss 0.000 -t 3.000 -i file:media/song.mp3" in args
    assert "setpts=PTS-STARTPTS+2.500/TB" in args
    assert "enable='gte(t,2.500)*lt(t,3.500)'" in args
    assert "volume=0.5,adelay=250:all=1" in args
    # The video has no sound stream: only the song is mixed over the silence.
    assert "amix=inputs=2" in args
    assert "-c:s mov_text" in args and "title=English" in args
    assert "-t 3.500" in args and args.endswith("-f mp4 /out/x.mp4")
    assert command.files["subtitles-0.srt"] == "1\n00:00:00,000 --> 00:00:01,000\nHi\n"


def test_command_burns_subtitles_and_titles() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "title", start_ms=0, duration_ms=1000, text="Big {title}\\N")
    tl.add_clip(doc, "s1", "subtitle", start_ms=3_600_000, duration_ms=1230, text="Late\n\nline")
    spec = _spec(doc, format=OutputFormat.WEBM)

    command = build_command(spec, "out.webm", has_audio={})
    args = " ".join(command.args)

    assert "ass=subtitles.ass[vout]" in args and "libvpx-vp9" in args and "-map 0:s" not in args
    script = command.files["subtitles.ass"]
    assert "PlayResY: 1080" in script
    assert "Dialogue: 1,0:00:00.00,0:00:01.00,Title,,0,0,0,,Big \\{title\\}\\\u2060N" in script
    assert "Dialogue: 0,1:00:00.00,1:00:01.23,Subtitle,,0,0,0,,Late\\N\\Nline" in script
    assert ass_document(spec) == script


def test_progress_parser() -> None:
    parser = ProgressParser(2000)
    assert parser.feed("frame=10") is None
    assert parser.feed("out_time_us=500000") is None
    assert parser.feed("progress=continue") == 0.25
    assert parser.feed("out_time_us=N/A") is None
    assert parser.feed("progress=continue") == 0.25
    assert parser.feed("out_time_us=9000000") is None
    assert parser.feed("progress=continue") == 0.999
    assert parser.feed("progress=end") == 1.0 and parser.done


def test_parse_media_info() -> None:
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'out.mp4':
  Duration: 00:01:02.52, start: 0.000000, bitrate: 220 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 320x180 [SAR 1:1 DAR 16:9], 25 fps
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 192 kb/s
  Stream #0:2[0x3](eng): Subtitle: mov_text (tx3g / 0x67337874), 0 kb/s
At least one output file must be specified"""  # noqa: E501
    info = parse_media_info(text)
    assert info.duration_ms == 62_520
    assert (info.video, info.audio, info.subtitle) == (("h264",), ("aac",), ("mov_text",))
    assert (info.width, info.height) == (320, 180)
    assert parse_media_info("garbage").duration_ms is None


def test_parse_cpu_seconds() -> None:
    lines = [
        "bench: utime=0.100s stime=0.020s rtime=0.500s",
        "frame=  25 fps=0.0 q=-1.0 Lsize=  12kB",
        "bench: utime=3.250s stime=0.500s rtime=2.000s",
        "bench: maxrss=51200KiB",
    ]
    assert parse_cpu_seconds(lines) == 3.75  # the last report: user + system
    assert parse_cpu_seconds(["no benchmark here"]) is None


def test_spec_survives_json() -> None:
    doc, _ = _doc()
    tl.add_clip(doc, "v1", "video", start_ms=0, duration_ms=4000, asset="beach", source_in_ms=10)
    tl.add_clip(doc, "v2", "image", start_ms=1000, duration_ms=2000, asset="logo")
    tl.add_clip(doc, "a1", "audio", start_ms=500, duration_ms=5000, asset="song", volume=0.4)
    tl.add_clip(doc, "s1", "subtitle", start_ms=100, duration_ms=900, text="Hi")
    tl.add_clip(doc, "v1", "title", start_ms=4000, duration_ms=1000, text="End")
    spec = _spec(doc, format=OutputFormat.WEBM, subtitles=SubtitleMode.STREAM, start_ms=50)

    assert RenderSpec.from_json(spec.to_json()) == spec
    moved = spec.with_uris({k: f"/local/{k}" for k in spec.assets})
    assert moved.visuals[0].uri == "/local/beach" and moved.audio[-1].uri == "/local/song"
    assert moved.assets == {"beach": "/local/beach", "logo": "/local/logo", "song": "/local/song"}

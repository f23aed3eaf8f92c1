"""OpenTimelineIO interchange: export then import gives the same timeline."""

from __future__ import annotations

import json
from typing import Any

import opentimelineio as otio  # type: ignore[import-untyped]
import pytest
from pycrdt import Doc

from crdt import timeline as tl
from render.otio import OtioImportError, export_otio, parse_otio, write_timeline


def _source() -> Doc[Any]:
    doc = tl.new_project_doc("Round trip", fps=29.97, width=1280, height=720)
    v1 = tl.add_track(doc, "video", "Main", track_id="v1")
    v2 = tl.add_track(doc, "overlay", "Logos", track_id="v2")
    a1 = tl.add_track(doc, "audio", "Music", track_id="a1")
    s1 = tl.add_track(doc, "subtitle", "English", track_id="s1")
    tl.set_track_flags(doc, a1, muted=True, locked=True)
    tl.add_asset(doc, "video", "Beach", "media://projects/p/beach.mp4", duration_ms=12_345,
                 asset_id="beach")  # fmt: skip
    tl.add_asset(doc, "image", "Logo", "media://projects/p/logo.png", asset_id="logo")
    tl.add_asset(doc, "audio", "Song", "media://projects/p/song.mp3", duration_ms=60_001,
                 origin="ai:tts", asset_id="song")  # fmt: skip
    tl.add_asset(doc, "video", "Unused", "https://cdn.example.com/b.mov", asset_id="unused")
    tl.add_clip(doc, v1, "video", start_ms=0, duration_ms=4_001, asset="beach", source_in_ms=333,
                clip_id="c1")  # fmt: skip
    tl.add_clip(doc, v1, "video", start_ms=5_500, duration_ms=2_000, asset="beach", clip_id="c2")
    # Overlaps c2 on the same track: OTIO needs a second lane for it.
    tl.add_clip(doc, v1, "title", start_ms=6_000, duration_ms=1_000, text="Chapter 2",
                clip_id="c3")  # fmt: skip
    tl.add_clip(doc, v2, "image", start_ms=1_000, duration_ms=3_000, asset="logo", clip_id="c4")
    tl.add_clip(doc, a1, "audio", start_ms=250, duration_ms=7_000, asset="song", volume=0.35,
                clip_id="c5")  # fmt: skip
    tl.add_clip(doc, s1, "subtitle", start_ms=100, duration_ms=900, text="Hello\nthere",
                clip_id="c6")  # fmt: skip
    tl.set_project_fields(doc, thumbnail_asset="logo")
    return doc


def test_export_then_import_gives_the_same_timeline() -> None:
    original = tl.read_timeline(_source())

    imported = parse_otio(export_otio(original))
    doc: Doc[Any] = Doc()
    write_timeline(doc, imported)

    assert imported.skipped == []
    assert tl.read_timeline(doc).to_json() == original.to_json()


def test_export_is_plain_otio_that_editors_read() -> None:
    text = export_otio(tl.read_timeline(_source()))
    timeline = otio.adapters.read_from_string(text, "otio_json")

    assert [t.name for t in timeline.tracks] == ["Main", "Main (2)", "Logos", "Music", "English"]
    assert [t.kind for t in timeline.tracks] == ["Video", "Video", "Video", "Audio", "Video"]
    main = timeline.tracks[0]
    assert [type(i).__name__ for i in main] == ["Clip", "Gap", "Clip"]
    beach = main[0]
    assert beach.media_reference.target_url == "media://projects/p/beach.mp4"
    assert beach.source_range.start_time.rate == 29.97
    assert round(beach.source_range.start_time.to_seconds(), 3) == 0.333
    assert round(main.range_of_child_at_index(2).start_time.to_seconds(), 3) == 5.5
    title = timeline.tracks[1][1]
    assert title.media_reference.generator_kind == "flowai.text"
    assert title.media_reference.parameters["text"] == "Chapter 2"
    json.loads(text)


def test_import_from_another_editor() -> None:
    rate = 24
    timeline = otio.schema.Timeline(name="From an editor")
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    timeline.tracks.extend([video, audio])

    def rng(start: float, duration: float) -> Any:
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(duration, rate)
        )

    ref = otio.schema.ExternalReference(target_url="file:///footage/a.mov",
                                        available_range=rng(0, 240))  # fmt: skip
    video.append(otio.schema.Clip(name="a", media_reference=ref, source_range=rng(24, 48)))
    six = otio.opentime.RationalTime(6, rate)
    video.append(otio.schema.Transition(in_offset=six, out_offset=six))
    video.append(otio.schema.Gap(source_range=rng(0, 24)))
    again = otio.schema.ExternalReference(target_url="file:///footage/a.mov")
    video.append(otio.schema.Clip(name="a again", media_reference=again, source_range=rng(0, 12)))
    still = otio.schema.ExternalReference(target_url="https://cdn.example.com/card.PNG")
    video.append(otio.schema.Clip(name="card", media_reference=still, source_range=rng(0, 24)))
    video.append(otio.schema.Clip(name="offline", source_range=rng(0, 24)))
    song = otio.schema.ExternalReference(target_url="/music/song.wav")
    audio.append(otio.schema.Clip(name="song", media_reference=song, source_range=rng(0, 96)))

    imported = parse_otio(otio.adapters.write_to_string(timeline, "otio_json"))
    doc: Doc[Any] = Doc()
    write_timeline(doc, imported)
    result = tl.read_timeline(doc)

    assert result.problems == ()
    assert result.project.title == "From an editor" and result.project.fps == 30
    assert [(t.kind.value, t.name) for t in result.tracks] == [("video", "V1"), ("audio", "A1")]
    assets = {a.uri: a for a in result.assets}
    assert assets["file:///footage/a.mov"].duration_ms == 10_000
    assert assets["https://cdn.example.com/card.PNG"].kind.value == "image"
    assert assets["/music/song.wav"].kind.value == "audio"
    placed = [(c.kind.value, c.start_ms, c.duration_ms, c.source_in_ms) for c in result.clips]
    assert placed == [
        ("video", 0, 2000, 1000),
        ("video", 3000, 500, 0),
        ("image", 3500, 1000, 0),
        ("audio", 0, 4000, 0),
    ]
    assert imported.skipped == ["Transition on track 'V1'", "clip 'offline': no media reference"]


@pytest.mark.parametrize("text", ["", "{}", "[1, 2]", '{"OTIO_SCHEMA": "Clip.2", "name": "x"}'])
def test_import_refuses_what_is_not_a_timeline(text: str) -> None:
    with pytest.raises(OtioImportError):
        parse_otio(text)

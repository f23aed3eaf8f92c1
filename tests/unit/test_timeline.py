from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt import timeline as tl
from crdt.errors import CrdtError
from crdt.timeline import (
    AssetInUseError,
    AssetKind,
    ClipKind,
    DuplicateIdError,
    InvalidValueError,
    MalformedDocumentError,
    Problem,
    ProjectInfo,
    TimelineError,
    TrackKind,
    UnknownAssetError,
    UnknownClipError,
    UnknownTrackError,
    add_asset,
    add_clip,
    add_track,
    delete_asset,
    delete_clip,
    delete_track,
    init_project,
    move_clip,
    move_track,
    new_project_doc,
    read_timeline,
    rename_track,
    set_clip_text,
    set_clip_volume,
    set_project_fields,
    set_track_flags,
    trim_clip,
)
from tests.support.replicas import remote
from tests.support.replicas import replica as copy_of

# --- helpers ---------------------------------------------------------------------------------


def problems(doc: Doc[Any]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in read_timeline(doc).problems]


def entry(doc: Doc[Any], root: str, key: str) -> dict[str, Any]:
    value = doc.get(root, type=Map)[key]
    assert isinstance(value, Map)
    result: dict[str, Any] = value.to_py() or {}
    return result


def unchanged(doc: Doc[Any], action: Callable[[], object]) -> None:
    """``action`` raises a TimelineError and leaves the document exactly as it was."""
    before = doc.get_state()
    with pytest.raises(TimelineError):
        action()
    assert doc.get_state() == before


@pytest.fixture
def doc() -> Doc[Any]:
    """A project with two video tracks, one audio track, an asset and two clips."""
    d = new_project_doc("Demo")
    add_track(d, TrackKind.VIDEO, "V1", track_id="v1")
    add_track(d, TrackKind.VIDEO, "V2", track_id="v2")
    add_track(d, TrackKind.AUDIO, "A1", track_id="a1")
    add_asset(
        d,
        AssetKind.VIDEO,
        "beach.mp4",
        "s3://media/beach.mp4",
        duration_ms=60_000,
        asset_id="beach",
    )
    add_clip(d, "v1", ClipKind.VIDEO, start_ms=0, duration_ms=5000, asset="beach", clip_id="c1")
    add_clip(d, "a1", ClipKind.AUDIO, start_ms=1000, duration_ms=2000, clip_id="c2")
    return d


def track_ids(doc: Doc[Any]) -> list[str]:
    return [t.id for t in read_timeline(doc).tracks]


# --- reader: empty and well-formed documents -------------------------------------------------


def test_empty_doc_reads_as_empty_timeline_without_touching_it() -> None:
    empty: Doc[Any] = Doc()
    timeline = read_timeline(empty)
    assert timeline.project == ProjectInfo()
    assert (timeline.tracks, timeline.clips, timeline.assets, timeline.problems) == ((), (), (), ())
    assert list(empty.keys()) == []
    assert empty.get_update() == Doc().get_update()


def test_reader_round_trip_of_written_doc(doc: Doc[Any]) -> None:
    timeline = read_timeline(copy_of(doc))
    assert timeline.problems == ()
    assert timeline.project == ProjectInfo(title="Demo", fps=30.0, width=1920, height=1080)
    assert [t.id for t in timeline.tracks] == ["v1", "v2", "a1"]
    assert [c.id for c in timeline.clips] == ["c1", "c2"]
    c1 = timeline.clip("c1")
    assert c1 is not None
    assert (c1.start_ms, c1.duration_ms, c1.end_ms, c1.source_in_ms) == (0, 5000, 5000, 0)
    assert all(type(v) is int for v in (c1.start_ms, c1.duration_ms, c1.source_in_ms))
    assert c1.volume == 1.0 and c1.asset == "beach" and c1.text is None
    assert c1.kind is ClipKind.VIDEO
    assert timeline.asset("beach") is not None
    assert timeline.track("nope") is None and timeline.clip("nope") is None
    assert [c.id for c in timeline.clips_on("a1")] == ["c2"]


def test_to_json_is_plain_json(doc: Doc[Any]) -> None:
    data = read_timeline(doc).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["clips"][0] == {
        "id": "c1",
        "track": "v1",
        "kind": "video",
        "asset": "beach",
        "start_ms": 0,
        "duration_ms": 5000,
        "source_in_ms": 0,
        "volume": 1.0,
        "text": None,
    }
    assert data["tracks"][2] == {
        "id": "a1",
        "kind": "audio",
        "name": "A1",
        "order": read_timeline(doc).tracks[2].order,
        "muted": False,
        "locked": False,
    }
    assert data["assets"] == [
        {
            "id": "beach",
            "kind": "video",
            "name": "beach.mp4",
            "uri": "s3://media/beach.mp4",
            "duration_ms": 60000,
            "origin": "upload",
        }
    ]
    assert data["problems"] == []
    assert type(data["tracks"][0]["kind"]) is str


def test_clips_sorted_by_track_position_then_start_then_id(doc: Doc[Any]) -> None:
    add_clip(doc, "v2", "video", start_ms=0, duration_ms=10, clip_id="x")
    add_clip(doc, "v1", "video", start_ms=5000, duration_ms=10, clip_id="b")
    add_clip(doc, "v1", "video", start_ms=5000, duration_ms=10, clip_id="a")
    assert [c.id for c in read_timeline(doc).clips] == ["c1", "a", "b", "x", "c2"]
    move_track(doc, "a1", after=None)
    assert [c.id for c in read_timeline(doc).clips] == ["c2", "c1", "a", "b", "x"]


def test_tracks_with_equal_order_sort_by_id() -> None:
    d = remote(
        lambda src: src.__setitem__(
            "tracks",
            Map(
                {
                    "b": Map({"kind": "video", "order": "V"}),
                    "a": Map({"kind": "video", "order": "V"}),
                    "c": Map({"kind": "video", "order": "A"}),
                }
            ),
        )
    )
    assert track_ids(d) == ["c", "a", "b"]
    assert problems(d) == []


# --- reader: malformed documents -------------------------------------------------------------


def test_integral_floats_read_back_as_ints() -> None:
    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map({"t": Map({"kind": "video", "name": "T", "order": "V"})})
        src["clips"] = Map(
            {
                "c": Map(
                    {
                        "track": "t",
                        "kind": "video",
                        "start_ms": 1000.0,
                        "duration_ms": 250.0,
                        "source_in_ms": 40.0,
                        "volume": 1,
                    }
                )
            }
        )
        src["project"] = Map({"width": 1280.0, "height": 720.0, "fps": 25})

    timeline = read_timeline(remote(build))
    assert timeline.problems == ()
    clip = timeline.clips[0]
    assert (clip.start_ms, clip.duration_ms, clip.source_in_ms) == (1000, 250, 40)
    assert type(clip.start_ms) is int and type(clip.duration_ms) is int
    assert type(clip.volume) is float
    assert (timeline.project.width, timeline.project.height) == (1280, 720)
    assert type(timeline.project.width) is int and timeline.project.fps == 25.0
    assert json.dumps(timeline.to_json()["clips"][0]["start_ms"]) == "1000"


def test_entries_that_are_not_maps_are_skipped() -> None:
    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map(
            {
                "plain": {"kind": "video", "order": "V"},
                "arr": Array([1]),
                "t": Map({"kind": "video"}),
            }
        )
        src["clips"] = Map(
            {
                "str": "oops",
                "num": 5,
                "nul": None,
                "list": [1, 2],
                "dict": {"track": "t", "kind": "video", "start_ms": 0, "duration_ms": 5},
            }
        )
        src["assets"] = Map({"text": Text("hello"), "flag": True})

    assert problems(remote(build)) == [
        ("assets/flag", "expected a map, got true; asset skipped"),
        ("assets/text", "expected a map, got a Y.Text; asset skipped"),
        ("clips/dict", "expected a map, got a plain object; clip skipped"),
        ("clips/list", "expected a map, got a plain array; clip skipped"),
        ("clips/nul", "expected a map, got null; clip skipped"),
        ("clips/num", "expected a map, got 5.0; clip skipped"),
        ("clips/str", "expected a map, got 'oops'; clip skipped"),
        ("tracks/arr", "expected a map, got a Y.Array; track skipped"),
        ("tracks/plain", "expected a map, got a plain object; track skipped"),
    ]
    assert track_ids(remote(build)) == ["t"]


def test_bad_required_clip_fields_skip_the_clip() -> None:
    def clip(**fields: Any) -> Map[Any]:
        return Map({"track": "t", "kind": "video", "start_ms": 0, "duration_ms": 100, **fields})

    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map({"t": Map({"kind": "video", "order": "V"})})
        src["clips"] = Map(
            {
                "ok": clip(),
                "neg_start": clip(start_ms=-5),
                "nan_dur": clip(duration_ms=math.nan),
                "inf_start": clip(start_ms=math.inf),
                "zero_dur": clip(duration_ms=0),
                "frac": clip(start_ms=1000.5),
                "bool": clip(start_ms=True),
                "huge": clip(start_ms=2**60),
                "str_dur": clip(duration_ms="100"),
                "no_kind": Map({"track": "t", "start_ms": 0, "duration_ms": 100}),
                "bad_kind": clip(kind="sticker"),
                "no_track": Map({"kind": "video", "start_ms": 0, "duration_ms": 100}),
                "lost_track": clip(track="gone"),
                "two_bad": clip(start_ms=None, duration_ms=-1),
            }
        )

    d = remote(build)
    assert problems(d) == [
        (
            "clips/bad_kind/kind",
            "expected one of video, audio, image, subtitle, title, got 'sticker'; clip skipped",
        ),
        ("clips/bool/start_ms", "expected an integer >= 0, got true; clip skipped"),
        ("clips/frac/start_ms", "expected an integer >= 0, got 1000.5; clip skipped"),
        (
            "clips/huge/start_ms",
            "expected an integer >= 0, got 1.152921504606847e+18; clip skipped",
        ),
        ("clips/inf_start/start_ms", "expected an integer >= 0, got inf; clip skipped"),
        ("clips/lost_track/track", "unknown track 'gone'; clip skipped"),
        ("clips/nan_dur/duration_ms", "expected an integer >= 1, got nan; clip skipped"),
        ("clips/neg_start/start_ms", "expected an integer >= 0, got -5.0; clip skipped"),
        ("clips/no_kind/kind", "missing; clip skipped"),
        ("clips/no_track/track", "missing; clip skipped"),
        ("clips/str_dur/duration_ms", "expected an integer >= 1, got '100'; clip skipped"),
        ("clips/two_bad/duration_ms", "expected an integer >= 1, got -1.0; clip skipped"),
        ("clips/two_bad/start_ms", "expected an integer >= 0, got null; clip skipped"),
        ("clips/zero_dur/duration_ms", "expected an integer >= 1, got 0.0; clip skipped"),
    ]
    assert [c.id for c in read_timeline(d).clips] == ["ok"]


def test_bad_optional_clip_fields_are_defaulted() -> None:
    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map({"t": Map({"kind": "video", "order": "V"})})
        src["assets"] = Map({"a": Map({"kind": "image", "uri": "u"})})
        base = {"track": "t", "kind": "subtitle", "start_ms": 0, "duration_ms": 100}
        src["clips"] = Map(
            {
                "c": Map(
                    {
                        **base,
                        "volume": "loud",
                        "source_in_ms": -1,
                        "text": Text("typed"),
                        "asset": 7,
                        "extra": "ignored",
                    }
                ),
                "d": Map({**base, "volume": math.nan, "asset": "gone", "text": None}),
                "e": Map({**base, "volume": 0, "asset": "a", "text": "hi"}),
            }
        )

    d = remote(build)
    assert problems(d) == [
        ("clips/c/asset", "expected a non-empty string, got 7.0; using null"),
        ("clips/c/source_in_ms", "expected an integer >= 0, got -1.0; using 0"),
        ("clips/c/text", "expected a string, got a Y.Text; using null"),
        ("clips/c/volume", "expected a number >= 0, got 'loud'; using 1.0"),
        ("clips/d/asset", "unknown asset 'gone'; using null"),
        ("clips/d/volume", "expected a number >= 0, got nan; using 1.0"),
    ]
    c, dd, e = read_timeline(d).clips
    assert (c.volume, c.source_in_ms, c.text, c.asset) == (1.0, 0, None, None)
    assert (dd.volume, dd.asset, dd.text) == (1.0, None, None)
    assert (e.volume, e.asset, e.text) == (0.0, "a", "hi")


def test_bad_track_fields() -> None:
    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map(
            {
                "no_kind": Map({"name": "x", "order": "a"}),
                "bad_kind": Map({"kind": "image", "order": "b"}),
                "flags": Map({"kind": "audio", "muted": "yes", "locked": 1, "order": "c"}),
                "odd": Map({"kind": "overlay", "name": None, "order": 3}),
                "bare": Map({"kind": "subtitle"}),
            }
        )
        src["clips"] = Map(
            {"on_bad": Map({"track": "bad_kind", "kind": "video", "start_ms": 0, "duration_ms": 1})}
        )

    d = remote(build)
    assert problems(d) == [
        ("clips/on_bad/track", "unknown track 'bad_kind'; clip skipped"),
        (
            "tracks/bad_kind/kind",
            "expected one of video, audio, subtitle, overlay, got 'image'; track skipped",
        ),
        ("tracks/flags/locked", "expected a boolean, got 1.0; using false"),
        ("tracks/flags/muted", "expected a boolean, got 'yes'; using false"),
        ("tracks/no_kind/kind", "missing; track skipped"),
        ("tracks/odd/name", 'expected a string, got null; using ""'),
        ("tracks/odd/order", 'expected a string, got 3.0; using ""'),
    ]
    tracks = read_timeline(d).tracks
    # Missing or bad orders read as "" and sort first; ties break on id.
    assert [t.id for t in tracks] == ["bare", "odd", "flags"]
    assert tracks[0] == tl.Track("bare", TrackKind.SUBTITLE, "", "", False, False)


def test_bad_asset_fields() -> None:
    def build(src: Doc[Any]) -> None:
        src["assets"] = Map(
            {
                "no_uri": Map({"kind": "video"}),
                "empty_uri": Map({"kind": "audio", "uri": ""}),
                "bad_kind": Map({"kind": "font", "uri": "u"}),
                "fields": Map(
                    {"kind": "audio", "uri": "u", "name": 1, "duration_ms": -3, "origin": ""}
                ),
                "ai": Map({"kind": "audio", "uri": "u", "origin": "ai:tts", "duration_ms": None}),
            }
        )

    d = remote(build)
    assert problems(d) == [
        ("assets/bad_kind/kind", "expected one of video, audio, image, got 'font'; asset skipped"),
        ("assets/empty_uri/uri", "expected a non-empty string, got ''; asset skipped"),
        ("assets/fields/duration_ms", "expected an integer >= 1, got -3.0; using null"),
        ("assets/fields/name", 'expected a string, got 1.0; using ""'),
        ("assets/fields/origin", "expected a non-empty string, got ''; using \"upload\""),
        ("assets/no_uri/uri", "missing; asset skipped"),
    ]
    assets = read_timeline(d).assets
    assert [a.id for a in assets] == ["ai", "fields"]
    assert assets[0] == tl.Asset("ai", AssetKind.AUDIO, "", "u", None, "ai:tts")
    assert assets[1] == tl.Asset("fields", AssetKind.AUDIO, "", "u", None, "upload")


def test_bad_project_fields_are_defaulted() -> None:
    def build(src: Doc[Any]) -> None:
        src["project"] = Map(
            {"title": 3, "fps": "fast", "width": 0, "height": 1.5, "thumbnail_asset": "gone"}
        )

    d = remote(build)
    assert problems(d) == [
        ("project/fps", "expected a number > 0, got 'fast'; using 30.0"),
        ("project/height", "expected an integer >= 1, got 1.5; using 1080"),
        ("project/thumbnail_asset", "unknown asset 'gone'; using null"),
        ("project/title", 'expected a string, got 3.0; using ""'),
        ("project/width", "expected an integer >= 1, got 0.0; using 1920"),
    ]
    assert read_timeline(d).project == ProjectInfo()


def test_project_fields_missing_take_defaults_silently() -> None:
    d = remote(lambda src: src.__setitem__("project", Map({"title": "Only a title"})))
    assert read_timeline(d).project == ProjectInfo(title="Only a title")
    assert problems(d) == []


def test_root_of_another_type_is_ignored() -> None:
    d: Doc[Any] = Doc()
    d["clips"] = Array([{"track": "t"}])
    d["project"] = Text("hello")
    assert problems(d) == [
        ("clips", "expected a map, got a Y.Array; root ignored"),
        ("project", "expected a map, got a Y.Text; root ignored"),
    ]
    assert read_timeline(d).project == ProjectInfo()


def test_root_of_another_type_received_remotely_reads_empty() -> None:
    # Over the wire a root carries no type; an array's items are invisible through a map view.
    d = remote(lambda src: src.__setitem__("clips", Array([1, 2, 3])))
    assert read_timeline(d).clips == ()
    assert problems(d) == []


def test_long_strings_are_truncated_in_problems() -> None:
    d = remote(lambda src: src.__setitem__("clips", Map({"c": "x" * 10_000})))
    [(_, message)] = problems(d)
    assert message == f"expected a map, got {'x' * 40!r}...; clip skipped"


def test_unreadable_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    d = remote(
        lambda src: src.__setitem__(
            "tracks", Map({"bad": Map({"kind": "video"}), "good": Map({"kind": "video"})})
        )
    )
    original = Map.__getitem__

    def flaky(self: Map[Any], key: str) -> Any:
        if key == "bad":
            raise RuntimeError("cannot convert")
        return original(self, key)

    monkeypatch.setattr(Map, "__getitem__", flaky)
    assert problems(d) == [("tracks/bad", "unreadable value (RuntimeError); ignored")]
    assert track_ids(d) == ["good"]


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)  # pycrdt cannot store larger ints
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=3), children, max_size=3)
        ),
        max_leaves=6,
    ),
    st.sampled_from(["tracks", "clips", "assets", "project"]),
    st.sampled_from(["entry", "field"]),
    st.sampled_from(["kind", "track", "start_ms", "volume", "order", "uri", "fps"]),
)
@settings(max_examples=80, database=None, deadline=None)
def test_reader_never_raises(value: Any, root: str, where: str, field: str) -> None:
    def build(src: Doc[Any]) -> None:
        src["tracks"] = Map({"t": Map({"kind": "video", "order": "V"})})
        if where == "entry" and root != "project":
            src[root] = Map({"x": value}) if root != "tracks" else Map({"t": Map(), "x": value})
        else:
            target = {"kind": "video", "track": "t", "start_ms": 0, "duration_ms": 1, field: value}
            src[root] = Map(target) if root == "project" else Map({"x": Map(target)})

    try:
        d = remote(build)
    except (ValueError, TypeError, RuntimeError, OverflowError):
        return  # pycrdt itself refuses to store the value
    data = read_timeline(d).to_json()
    assert json.loads(json.dumps(data, allow_nan=False)) == data


# --- project writers -------------------------------------------------------------------------


def test_new_project_doc_defaults() -> None:
    d = new_project_doc("Trip")
    assert read_timeline(d).project == ProjectInfo(title="Trip")
    assert entry_root(d, "project") == {"title": "Trip", "fps": 30.0, "width": 1920, "height": 1080}


def entry_root(doc: Doc[Any], root: str) -> dict[str, Any]:
    result: dict[str, Any] = doc.get(root, type=Map).to_py() or {}
    return result


def test_init_project_is_idempotent_and_fills_only_missing_fields() -> None:
    d = remote(lambda src: src.__setitem__("project", Map({"title": "Kept", "fps": 24})))
    init_project(d, "Other", 60, 640, 480)
    assert read_timeline(d).project == ProjectInfo(title="Kept", fps=24.0, width=640, height=480)
    state = d.get_state()
    init_project(d, "Third", 50, 100, 100)
    assert d.get_state() == state


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("T", 0, 1920, 1080), "fps must be a number > 0, got 0"),
        (("T", -1.0, 1920, 1080), "fps must be a number > 0, got -1.0"),
        (("T", math.nan, 1920, 1080), "fps must be a number > 0, got nan"),
        (("T", 30, 0, 1080), "width must be an integer >= 1, got 0"),
        (("T", 30, 1920, 10.5), "height must be an integer >= 1, got 10.5"),
        ((3, 30, 1920, 1080), "title must be a string, got 3"),
    ],
)
def test_init_project_rejects_bad_values(args: tuple[Any, ...], message: str) -> None:
    d: Doc[Any] = Doc()
    with pytest.raises(InvalidValueError) as err:
        init_project(d, *args)
    assert str(err.value) == message
    assert list(d.keys()) == []


def test_set_project_fields(doc: Doc[Any]) -> None:
    set_project_fields(doc, title="New", fps=29.97, width=1280.0, height=720)
    assert read_timeline(doc).project == ProjectInfo("New", 29.97, 1280, 720)
    set_project_fields(doc, thumbnail_asset="beach")
    assert read_timeline(doc).project.thumbnail_asset == "beach"
    set_project_fields(doc, thumbnail_asset=None)
    assert read_timeline(doc).project.thumbnail_asset is None
    assert "thumbnail_asset" not in entry_root(doc, "project")
    set_project_fields(doc)  # nothing to do


def test_set_project_fields_errors(doc: Doc[Any]) -> None:
    with pytest.raises(InvalidValueError, match=r"unknown project field\(s\): colour, speed"):
        set_project_fields(doc, speed=2, colour="red")
    unchanged(doc, lambda: set_project_fields(doc, thumbnail_asset="nope"))
    unchanged(doc, lambda: set_project_fields(doc, title="ok", width=-1))
    unchanged(doc, lambda: set_project_fields(doc, thumbnail_asset=""))
    with pytest.raises(UnknownAssetError, match="unknown asset 'nope'"):
        set_project_fields(doc, thumbnail_asset="nope")


# --- track writers ---------------------------------------------------------------------------


def test_add_track_appends_and_inserts_after(doc: Doc[Any]) -> None:
    new_id = add_track(doc, "subtitle", "Subs")
    assert len(new_id) == 32 and int(new_id, 16) >= 0
    assert track_ids(doc) == ["v1", "v2", "a1", new_id]
    add_track(doc, "overlay", "Logo", track_id="o", after="v1")
    assert track_ids(doc) == ["v1", "o", "v2", "a1", new_id]
    stored = entry(doc, "tracks", "o")
    assert stored == {
        "kind": "overlay",
        "name": "Logo",
        "order": stored["order"],
        "muted": False,
        "locked": False,
    }


def test_add_track_errors(doc: Doc[Any]) -> None:
    unchanged(doc, lambda: add_track(doc, "image", "x"))
    unchanged(doc, lambda: add_track(doc, "video", 5))  # type: ignore[arg-type]
    unchanged(doc, lambda: add_track(doc, "video", "x", track_id="v1"))
    unchanged(doc, lambda: add_track(doc, "video", "x", track_id=""))
    unchanged(doc, lambda: add_track(doc, "video", "x", after="nope"))
    with pytest.raises(InvalidValueError, match="kind must be one of video, audio, subtitle"):
        add_track(doc, "image", "x")
    with pytest.raises(DuplicateIdError, match="track 'v1' already exists"):
        add_track(doc, "video", "x", track_id="v1")
    with pytest.raises(UnknownTrackError, match="unknown track 'nope'"):
        add_track(doc, "video", "x", after="nope")


def test_move_track(doc: Doc[Any]) -> None:
    before = entry(doc, "tracks", "a1")
    move_track(doc, "a1", after=None)
    assert track_ids(doc) == ["a1", "v1", "v2"]
    after = entry(doc, "tracks", "a1")
    assert {k: v for k, v in after.items() if k != "order"} == {
        k: v for k, v in before.items() if k != "order"
    }
    move_track(doc, "a1", after="v2")
    assert track_ids(doc) == ["v1", "v2", "a1"]
    move_track(doc, "v1", after="v2")
    assert track_ids(doc) == ["v2", "v1", "a1"]


def test_move_track_to_where_it_is_writes_nothing(doc: Doc[Any]) -> None:
    state = doc.get_state()
    move_track(doc, "v2", after="v1")
    move_track(doc, "v1", after=None)
    move_track(doc, "v1", after="v1")
    assert doc.get_state() == state


def test_move_track_errors(doc: Doc[Any]) -> None:
    unchanged(doc, lambda: move_track(doc, "nope", after=None))
    unchanged(doc, lambda: move_track(doc, "v1", after="nope"))
    with pytest.raises(UnknownTrackError):
        move_track(doc, "nope", after=None)


def test_tied_orders_are_renumbered_when_inserting_between_them() -> None:
    base = new_project_doc("T")
    left, right = copy_of(base), copy_of(base)
    add_track(left, "video", "L", track_id="l")
    add_track(right, "video", "R", track_id="r")
    left.apply_update(right.get_update())
    timeline = read_timeline(left)
    assert [t.order for t in timeline.tracks] == ["V", "V"]
    assert track_ids(left) == ["l", "r"]
    add_track(left, "video", "M", track_id="m", after="l")
    assert track_ids(left) == ["l", "m", "r"]
    orders = [t.order for t in read_timeline(left).tracks]
    assert orders == sorted(set(orders))
    move_track(left, "r", after=None)
    assert track_ids(left) == ["r", "l", "m"]


def test_foreign_order_keys_are_renumbered() -> None:
    d = remote(
        lambda src: src.__setitem__(
            "tracks",
            Map(
                {
                    "x": Map({"kind": "video", "order": "~x"}),
                    "y": Map({"kind": "video"}),
                    "z": Map({"kind": "video", "order": "0"}),
                }
            ),
        )
    )
    assert track_ids(d) == ["y", "z", "x"]
    add_track(d, "audio", "A", track_id="a", after="y")
    assert track_ids(d) == ["y", "a", "z", "x"]
    add_track(d, "audio", "B", track_id="b", after=None)
    move_track(d, "b", after=None)
    assert track_ids(d) == ["b", "y", "a", "z", "x"]
    assert problems(d) == []


def test_rename_and_flags(doc: Doc[Any]) -> None:
    rename_track(doc, "v1", "Main")
    set_track_flags(doc, "v1", muted=True)
    track = read_timeline(doc).track("v1")
    assert track is not None
    assert (track.name, track.muted, track.locked) == ("Main", True, False)
    set_track_flags(doc, "v1", locked=True)
    set_track_flags(doc, "v1", muted=False)
    track = read_timeline(doc).track("v1")
    assert track is not None and (track.muted, track.locked) == (False, True)
    unchanged(doc, lambda: rename_track(doc, "nope", "x"))
    unchanged(doc, lambda: rename_track(doc, "v1", None))  # type: ignore[arg-type]
    unchanged(doc, lambda: set_track_flags(doc, "v1", muted=1))  # type: ignore[arg-type]
    unchanged(doc, lambda: set_track_flags(doc, "nope", muted=True))


def test_delete_track_deletes_its_clips(doc: Doc[Any]) -> None:
    add_clip(doc, "v1", "video", start_ms=9000, duration_ms=10, clip_id="c3")
    clips = doc.get("clips", type=Map)
    clips["stray"] = {"track": "v1"}  # a plain object clip that names the track
    delete_track(doc, "v1")
    timeline = read_timeline(doc)
    assert track_ids(doc) == ["v2", "a1"]
    assert [c.id for c in timeline.clips] == ["c2"]
    assert sorted(clips.keys()) == ["c2"]
    unchanged(doc, lambda: delete_track(doc, "v1"))


# --- asset writers ---------------------------------------------------------------------------


def test_add_asset(doc: Doc[Any]) -> None:
    voice = add_asset(
        doc,
        "audio",
        "Narration",
        "s3://tts/1.mp3",
        duration_ms=1500.0,  # type: ignore[arg-type]  # integral floats (from JSON) are accepted
        origin="ai:tts",
    )
    still = add_asset(doc, AssetKind.IMAGE, "Cover", "s3://img/1.png", asset_id="cover")
    assert entry(doc, "assets", voice) == {
        "kind": "audio",
        "name": "Narration",
        "uri": "s3://tts/1.mp3",
        "origin": "ai:tts",
        "duration_ms": 1500,
    }
    assert "duration_ms" not in entry(doc, "assets", still)
    assert read_timeline(doc).asset("cover") == tl.Asset(
        "cover", AssetKind.IMAGE, "Cover", "s3://img/1.png", None, "upload"
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"kind": "font"}, InvalidValueError),
        ({"uri": ""}, InvalidValueError),
        ({"name": None}, InvalidValueError),
        ({"duration_ms": 0}, InvalidValueError),
        ({"duration_ms": -10}, InvalidValueError),
        ({"origin": ""}, InvalidValueError),
        ({"asset_id": "beach"}, DuplicateIdError),
    ],
)
def test_add_asset_errors(doc: Doc[Any], kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"kind": "video", "name": "n", "uri": "u", **kwargs}
    before = doc.get_state()
    with pytest.raises(error):
        add_asset(doc, args.pop("kind"), args.pop("name"), args.pop("uri"), **args)
    assert doc.get_state() == before


def test_delete_asset(doc: Doc[Any]) -> None:
    add_asset(doc, "image", "Cover", "u", asset_id="cover")
    set_project_fields(doc, thumbnail_asset="cover")
    delete_asset(doc, "cover")
    assert read_timeline(doc).asset("cover") is None
    assert read_timeline(doc).project.thumbnail_asset is None
    assert problems(doc) == []
    unchanged(doc, lambda: delete_asset(doc, "cover"))


def test_delete_asset_in_use(doc: Doc[Any]) -> None:
    with pytest.raises(AssetInUseError, match="asset 'beach' is used by clip\\(s\\) 'c1'"):
        delete_asset(doc, "beach")
    assert read_timeline(doc).asset("beach") is not None
    delete_asset(doc, "beach", cascade=True)
    timeline = read_timeline(doc)
    assert timeline.asset("beach") is None
    assert [c.id for c in timeline.clips] == ["c2"]


def test_asset_in_use_message_is_bounded(doc: Doc[Any]) -> None:
    for i in range(7):
        add_clip(doc, "v2", "video", start_ms=i, duration_ms=1, asset="beach", clip_id=f"k{i}")
    with pytest.raises(AssetInUseError, match=r"'c1', 'k0', 'k1', 'k2', 'k3' and 3 more$"):
        delete_asset(doc, "beach")


# --- clip writers ----------------------------------------------------------------------------


def test_add_clip_stores_ints_and_omits_absent_fields(doc: Doc[Any]) -> None:
    start: Any = 1000.0  # integral floats (from JSON) are accepted and stored as ints
    sub = add_clip(doc, "v2", ClipKind.SUBTITLE, start_ms=start, duration_ms=500, text="Hi")
    assert entry(doc, "clips", sub) == {
        "track": "v2",
        "kind": "subtitle",
        "start_ms": 1000,
        "duration_ms": 500,
        "source_in_ms": 0,
        "volume": 1.0,
        "text": "Hi",
    }
    clip = read_timeline(copy_of(doc)).clip(sub)
    assert clip is not None and clip.text == "Hi" and clip.asset is None
    assert type(clip.start_ms) is int


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"start_ms": -1}, InvalidValueError, "start_ms must be an integer >= 0, got -1"),
        ({"duration_ms": -5}, InvalidValueError, "duration_ms must be an integer >= 1, got -5"),
        ({"duration_ms": 0}, InvalidValueError, "duration_ms must be an integer >= 1, got 0"),
        ({"start_ms": 1.5}, InvalidValueError, "start_ms must be an integer >= 0, got 1.5"),
        ({"start_ms": True}, InvalidValueError, "start_ms must be an integer >= 0, got True"),
        (
            {"start_ms": 2**53},
            InvalidValueError,
            "start_ms must be an integer >= 0, got 9007199254740992",
        ),
        ({"source_in_ms": -1}, InvalidValueError, "source_in_ms must be an integer >= 0, got -1"),
        ({"volume": -0.1}, InvalidValueError, "volume must be a number >= 0, got -0.1"),
        ({"volume": math.inf}, InvalidValueError, "volume must be a number >= 0, got inf"),
        ({"text": 3}, InvalidValueError, "text must be a string, got 3"),
        (
            {"kind": "gif"},
            InvalidValueError,
            "kind must be one of video, audio, image, subtitle, title, got 'gif'",
        ),
        ({"track_id": "nope"}, UnknownTrackError, "unknown track 'nope'"),
        ({"track_id": ""}, InvalidValueError, "track id must be a non-empty string, got ''"),
        ({"asset": "nope"}, UnknownAssetError, "unknown asset 'nope'"),
        ({"clip_id": "c1"}, DuplicateIdError, "clip 'c1' already exists"),
    ],
)
def test_add_clip_errors(
    doc: Doc[Any], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {
        "track_id": "v1",
        "kind": "video",
        "start_ms": 0,
        "duration_ms": 10,
        **kwargs,
    }
    before = doc.get_state()
    with pytest.raises(error) as err:
        add_clip(doc, args.pop("track_id"), args.pop("kind"), **args)
    assert str(err.value) == message
    assert doc.get_state() == before


def test_move_clip(doc: Doc[Any]) -> None:
    move_clip(doc, "c1", start_ms=7000)
    assert entry(doc, "clips", "c1")["start_ms"] == 7000
    assert entry(doc, "clips", "c1")["track"] == "v1"
    move_clip(doc, "c1", start_ms=0, track_id="v2")
    clip = read_timeline(doc).clip("c1")
    assert clip is not None and (clip.track, clip.start_ms, clip.duration_ms) == ("v2", 0, 5000)
    unchanged(doc, lambda: move_clip(doc, "nope", start_ms=0))
    unchanged(doc, lambda: move_clip(doc, "c1", start_ms=-1))
    unchanged(doc, lambda: move_clip(doc, "c1", start_ms=0, track_id="nope"))
    with pytest.raises(UnknownClipError, match="unknown clip 'nope'"):
        move_clip(doc, "nope", start_ms=0)


def test_move_clip_to_same_place_writes_nothing(doc: Doc[Any]) -> None:
    remote_view = copy_of(doc)  # stored numbers are floats here
    state = remote_view.get_state()
    move_clip(remote_view, "c1", start_ms=0, track_id="v1")
    trim_clip(remote_view, "c1", duration_ms=5000)
    assert remote_view.get_state() == state


def test_trim_clip(doc: Doc[Any]) -> None:
    trim_clip(doc, "c1", start_ms=500, duration_ms=4500, source_in_ms=500)
    clip = read_timeline(doc).clip("c1")
    assert clip is not None and (clip.start_ms, clip.duration_ms, clip.source_in_ms) == (
        500,
        4500,
        500,
    )
    trim_clip(doc, "c1", duration_ms=100)
    clip = read_timeline(doc).clip("c1")
    assert clip is not None and (clip.start_ms, clip.duration_ms) == (500, 100)
    unchanged(doc, lambda: trim_clip(doc, "c1", duration_ms=0))
    unchanged(doc, lambda: trim_clip(doc, "c1", source_in_ms=-3))
    unchanged(doc, lambda: trim_clip(doc, "nope", duration_ms=1))


def test_clip_text_and_volume(doc: Doc[Any]) -> None:
    set_clip_text(doc, "c2", "Caption")
    set_clip_volume(doc, "c2", 0.25)
    clip = read_timeline(doc).clip("c2")
    assert clip is not None and (clip.text, clip.volume) == ("Caption", 0.25)
    set_clip_text(doc, "c2", None)
    assert "text" not in entry(doc, "clips", "c2")
    unchanged(doc, lambda: set_clip_text(doc, "c2", 5))  # type: ignore[arg-type]
    unchanged(doc, lambda: set_clip_volume(doc, "c2", math.nan))
    unchanged(doc, lambda: set_clip_text(doc, "nope", "x"))


def test_delete_clip(doc: Doc[Any]) -> None:
    delete_clip(doc, "c1")
    assert [c.id for c in read_timeline(doc).clips] == ["c2"]
    unchanged(doc, lambda: delete_clip(doc, "c1"))
    unchanged(doc, lambda: delete_clip(doc, ""))


def test_writers_refuse_malformed_targets_but_delete_them(doc: Doc[Any]) -> None:
    clips = doc.get("clips", type=Map)
    clips["junk"] = "not a clip"
    with pytest.raises(MalformedDocumentError, match="clip 'junk' is 'not a clip', not a map"):
        move_clip(doc, "junk", start_ms=0)
    delete_clip(doc, "junk")
    assert problems(doc) == []


def test_writers_refuse_root_of_another_type() -> None:
    d = new_project_doc("T")
    d["tracks"] = Array()
    with pytest.raises(MalformedDocumentError, match=r"root 'tracks' is a Y\.Array, not a map"):
        add_track(d, "video", "V")


def test_error_hierarchy() -> None:
    for error in (
        InvalidValueError,
        DuplicateIdError,
        UnknownTrackError,
        UnknownClipError,
        UnknownAssetError,
        AssetInUseError,
        MalformedDocumentError,
    ):
        assert issubclass(error, TimelineError)
    assert issubclass(TimelineError, ValueError)
    assert issubclass(TimelineError, CrdtError)


def test_problem_to_json() -> None:
    assert Problem("clips/x", "m").to_json() == {"path": "clips/x", "message": "m"}


# --- concurrency -----------------------------------------------------------------------------


def replicas(base: Doc[Any], n: int) -> list[Doc[Any]]:
    return [copy_of(base) for _ in range(n)]


def exchange(a: Doc[Any], b: Doc[Any]) -> None:
    update_for_b = a.get_update(b.get_state())
    update_for_a = b.get_update(a.get_state())
    b.apply_update(update_for_b)
    a.apply_update(update_for_a)


def test_concurrent_edits_of_different_fields_of_one_clip_both_survive(doc: Doc[Any]) -> None:
    left, right = replicas(doc, 2)
    move_clip(left, "c1", start_ms=12_000)
    trim_clip(right, "c1", duration_ms=1_500)
    set_clip_volume(right, "c1", 0.5)
    exchange(left, right)
    for replica in (left, right):
        clip = read_timeline(replica).clip("c1")
        assert clip is not None
        assert (clip.start_ms, clip.duration_ms, clip.volume) == (12_000, 1_500, 0.5)
    assert read_timeline(left).to_json() == read_timeline(right).to_json()


def test_concurrent_move_and_rename_of_a_track_both_survive(doc: Doc[Any]) -> None:
    left, right = replicas(doc, 2)
    move_track(left, "a1", after=None)
    rename_track(right, "a1", "Music")
    set_track_flags(right, "a1", muted=True)
    exchange(left, right)
    for replica in (left, right):
        assert track_ids(replica) == ["a1", "v1", "v2"]
        track = read_timeline(replica).track("a1")
        assert track is not None and (track.name, track.muted) == ("Music", True)


def test_concurrent_moves_of_one_clip_converge(doc: Doc[Any]) -> None:
    left, right = replicas(doc, 2)
    move_clip(left, "c1", start_ms=100, track_id="v2")
    move_clip(right, "c1", start_ms=900)
    exchange(left, right)
    assert read_timeline(left).to_json() == read_timeline(right).to_json()
    clip = read_timeline(left).clip("c1")
    assert clip is not None and clip.start_ms in (100, 900)


def test_concurrent_delete_wins_over_edit_and_clip_on_deleted_track_is_reported(
    doc: Doc[Any],
) -> None:
    left, right = replicas(doc, 2)
    delete_clip(left, "c1")
    trim_clip(right, "c1", duration_ms=10)
    delete_track(left, "v2")
    add_clip(right, "v2", "video", start_ms=0, duration_ms=10, clip_id="late")
    exchange(left, right)
    for replica in (left, right):
        timeline = read_timeline(replica)
        assert [c.id for c in timeline.clips] == ["c2"]
        assert problems(replica) == [("clips/late/track", "unknown track 'v2'; clip skipped")]


# --- property: any delivery order converges --------------------------------------------------


def deliver(target: Doc[Any], updates: list[bytes]) -> None:
    """Apply ``updates`` in the given order, then again until nothing more integrates.

    The second pass stands in for the resync a provider does (sync step 1/2): pycrdt 0.14.13
    can leave an update pending for good when it arrives together with another early update of
    the same client (see ``test_pycrdt_chained_pending_updates``), which a resync repairs.
    """
    for update in updates:
        target.apply_update(update)
    for _ in updates:
        state = target.get_state()
        for update in updates:
            target.apply_update(update)
        if target.get_state() == state:
            return


def state_vector(doc: Doc[Any]) -> dict[int, int]:
    """Decoded ``doc.get_state()`` (the encoding does not order clients canonically)."""
    data, pos = doc.get_state(), 0

    def varuint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    return {varuint(): varuint() for _ in range(varuint())}


@pytest.mark.xfail(
    strict=True,
    reason="pycrdt 0.14.13: chained pending updates of one client are not all integrated "
    "when the missing one arrives (Yjs converges); remove deliver()'s second pass once fixed",
)
def test_pycrdt_chained_pending_updates() -> None:
    seed: Doc[Any] = Doc()
    seed["m"] = Map({"k": "a", "j": "x"})
    writer = copy_of(seed)
    m = writer.get("m", type=Map)
    updates = [seed.get_update()]
    for key, value in (("k", "b"), ("j", "y"), ("k", "c")):
        before = writer.get_state()
        m[key] = value
        updates.append(writer.get_update(before))
    late: Doc[Any] = Doc()
    for index in (0, 2, 3, 1):  # the first edit arrives last
        late.apply_update(updates[index])
    assert late.get("m", type=Map).to_py() == {"k": "c", "j": "y"}


TRACK_IDS = ["t0", "t1", "t2", "t3"]
CLIP_IDS = ["c0", "c1", "c2", "c3", "c4", "c5"]
ASSET_IDS = ["a0", "a1"]
# Few distinct values, so that clips often start at the same time and writes often collide.
times = st.sampled_from([0, 1000, 2500]) | st.integers(0, 20_000)
durations = st.sampled_from([1, 1000]) | st.integers(1, 10_000)
maybe_track = st.none() | st.sampled_from(TRACK_IDS)

operations = st.one_of(
    st.tuples(
        st.just("add_track"), st.sampled_from(TRACK_IDS), st.sampled_from(TrackKind), maybe_track
    ),
    st.tuples(st.just("move_track"), st.sampled_from(TRACK_IDS), maybe_track),
    st.tuples(st.just("rename_track"), st.sampled_from(TRACK_IDS), st.text(max_size=3)),
    st.tuples(
        st.just("flags"),
        st.sampled_from(TRACK_IDS),
        st.none() | st.booleans(),
        st.none() | st.booleans(),
    ),
    st.tuples(st.just("delete_track"), st.sampled_from(TRACK_IDS)),
    st.tuples(
        st.just("add_clip"),
        st.sampled_from(CLIP_IDS),
        st.sampled_from(TRACK_IDS),
        times,
        durations,
        st.none() | st.sampled_from(ASSET_IDS),
    ),
    st.tuples(st.just("move_clip"), st.sampled_from(CLIP_IDS), times, maybe_track),
    st.tuples(
        st.just("trim_clip"),
        st.sampled_from(CLIP_IDS),
        st.none() | times,
        st.none() | durations,
        st.none() | times,
    ),
    st.tuples(st.just("text"), st.sampled_from(CLIP_IDS), st.none() | st.text(max_size=3)),
    st.tuples(st.just("volume"), st.sampled_from(CLIP_IDS), st.floats(0, 2)),
    st.tuples(st.just("delete_clip"), st.sampled_from(CLIP_IDS)),
    st.tuples(st.just("add_asset"), st.sampled_from(ASSET_IDS)),
    st.tuples(st.just("delete_asset"), st.sampled_from(ASSET_IDS), st.booleans()),
    st.tuples(st.just("thumbnail"), st.none() | st.sampled_from(ASSET_IDS)),
    st.tuples(st.just("title"), st.text(max_size=3)),
    st.tuples(st.just("sync"), st.integers(0, 2)),
)


def apply_operation(d: Doc[Any], op: tuple[Any, ...]) -> None:
    name, *args = op
    if name == "add_track":
        add_track(d, args[1], "T", track_id=args[0], after=args[2])
    elif name == "move_track":
        move_track(d, args[0], after=args[1])
    elif name == "rename_track":
        rename_track(d, args[0], args[1])
    elif name == "flags":
        set_track_flags(d, args[0], muted=args[1], locked=args[2])
    elif name == "delete_track":
        delete_track(d, args[0])
    elif name == "add_clip":
        add_clip(
            d,
            args[1],
            "video",
            start_ms=args[2],
            duration_ms=args[3],
            asset=args[4],
            clip_id=args[0],
        )
    elif name == "move_clip":
        move_clip(d, args[0], start_ms=args[1], track_id=args[2])
    elif name == "trim_clip":
        trim_clip(d, args[0], start_ms=args[1], duration_ms=args[2], source_in_ms=args[3])
    elif name == "text":
        set_clip_text(d, args[0], args[1])
    elif name == "volume":
        set_clip_volume(d, args[0], args[1])
    elif name == "delete_clip":
        delete_clip(d, args[0])
    elif name == "add_asset":
        add_asset(d, "video", "A", "u", duration_ms=1000, asset_id=args[0])
    elif name == "delete_asset":
        delete_asset(d, args[0], cascade=args[1])
    elif name == "thumbnail":
        set_project_fields(d, thumbnail_asset=args[0])
    elif name == "title":
        set_project_fields(d, title=args[0])


def seed_doc() -> Doc[Any]:
    # Fixed client ids: which of two concurrent writes wins depends on them, and hypothesis
    # needs every run of an example to take the same path.
    d: Doc[Any] = Doc(client_id=1)
    init_project(d, "Seed")
    add_track(d, "video", "V", track_id="t0")
    add_track(d, "audio", "A", track_id="t1")
    add_asset(d, "video", "A0", "u", duration_ms=5000, asset_id="a0")
    add_clip(d, "t0", "video", start_ms=0, duration_ms=1000, asset="a0", clip_id="c0")
    add_clip(d, "t0", "video", start_ms=1000, duration_ms=1000, clip_id="c1")
    add_clip(d, "t1", "audio", start_ms=0, duration_ms=3000, clip_id="c2")
    return d


@given(
    n_replicas=st.integers(2, 3),
    steps=st.lists(st.tuples(st.integers(0, 2), operations), min_size=1, max_size=25),
    data=st.data(),
)
@settings(
    max_examples=60,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_any_delivery_order_converges(
    n_replicas: int, steps: list[tuple[int, tuple[Any, ...]]], data: st.DataObject
) -> None:
    seed = seed_doc()
    updates = [seed.get_update()]
    peers: list[Doc[Any]] = [Doc(client_id=10 + i) for i in range(n_replicas)]
    for peer in peers:
        peer.apply_update(updates[0])
    for who, op in steps:
        peer = peers[who % n_replicas]
        if op[0] == "sync":
            source = peers[op[1] % n_replicas]
            peer.apply_update(source.get_update(peer.get_state()))
            continue
        before = peer.get_state()
        try:
            apply_operation(peer, op)
        except TimelineError:
            continue  # e.g. editing a clip this replica has deleted: the UI would not offer it
        updates.append(peer.get_update(before))

    in_order: Doc[Any] = Doc()
    deliver(in_order, updates)
    expected = read_timeline(in_order).to_json()

    for _ in range(2):
        shuffled: Doc[Any] = Doc()
        deliver(shuffled, data.draw(st.permutations(updates)))
        assert state_vector(shuffled) == state_vector(in_order)
        assert read_timeline(shuffled).to_json() == expected

    # Replicas that exchange state directly end up in the same place too.
    for peer in peers:
        peer.apply_update(in_order.get_update(peer.get_state()))
        assert read_timeline(peer).to_json() == expected

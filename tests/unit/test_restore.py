from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt.protocol import EMPTY_UPDATE
from crdt.restore import RESTORE_ORIGIN, restore_to, restore_update
from crdt.timeline import (
    ROOT_ASSETS,
    ROOT_CLIPS,
    ROOT_PROJECT,
    ROOT_TRACKS,
    ROOTS,
    add_asset,
    add_clip,
    add_track,
    delete_clip,
    move_clip,
    new_project_doc,
    read_timeline,
    rename_track,
    set_clip_text,
    set_clip_volume,
    set_project_fields,
    set_track_flags,
    trim_clip,
)
from tests.support.replicas import remote, replica

# --- helpers ---------------------------------------------------------------------------------


def sync(a: Doc[Any], b: Doc[Any]) -> None:
    """Exchange what each side is missing, as y-websocket's sync step 2 does."""
    a_missing = b.get_update(a.get_state())
    b_missing = a.get_update(b.get_state())
    a.apply_update(a_missing)
    b.apply_update(b_missing)


def timeline_json(doc: Doc[Any]) -> dict[str, Any]:
    return read_timeline(doc).to_json()


def content(doc: Doc[Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    """Every root's full content, malformed entries included."""
    return {name: doc.get(name, type=Map).to_py() for name in roots}


def clip_field(doc: Doc[Any], clip_id: str, field: str) -> Any:
    entry = doc.get(ROOT_CLIPS, type=Map)[clip_id]
    assert isinstance(entry, Map)
    return entry.get(field)


def sample(title: str = "Film") -> Doc[Any]:
    doc = new_project_doc(title)
    add_track(doc, "video", "Main", track_id="v1")
    add_track(doc, "subtitle", "Subs", track_id="s1")
    add_asset(doc, "video", "intro.mp4", "s3://media/intro.mp4", duration_ms=9000, asset_id="a1")
    add_clip(doc, "v1", "video", start_ms=0, duration_ms=4000, asset="a1", clip_id="c1")
    add_clip(doc, "v1", "video", start_ms=4000, duration_ms=2000, asset="a1", clip_id="c2")
    add_clip(doc, "s1", "subtitle", start_ms=0, duration_ms=1500, text="Hello", clip_id="c3")
    return doc


def edited(doc: Doc[Any]) -> Doc[Any]:
    """A later state of ``doc``: fields changed, a clip deleted, a track, asset and clip added."""
    later = replica(doc)
    set_project_fields(later, title="Film v2", fps=25)
    rename_track(later, "v1", "Main cut")
    set_track_flags(later, "s1", muted=True)
    trim_clip(later, "c1", duration_ms=3000, source_in_ms=500)
    delete_clip(later, "c2")
    set_clip_text(later, "c3", "Hello, world")
    add_track(later, "audio", "Music", track_id="m1")
    add_asset(later, "audio", "song.mp3", "s3://media/song.mp3", asset_id="a2")
    add_clip(later, "m1", "audio", start_ms=0, duration_ms=6000, asset="a2", clip_id="c4")
    return later


# --- restoring -------------------------------------------------------------------------------


def test_restore_update_brings_every_replica_to_the_version() -> None:
    version = sample()
    live = edited(version)
    watcher = replica(live)

    update = restore_update(live, version.get_update())

    watcher.apply_update(update)
    assert timeline_json(live) == timeline_json(version)
    assert timeline_json(watcher) == timeline_json(version)
    assert content(watcher) == content(version)


def test_restore_to_the_newer_state_works_too() -> None:
    live = sample()
    version = edited(live)
    watcher = replica(live)
    watcher.apply_update(restore_update(live, version.get_update()))
    assert timeline_json(watcher) == timeline_json(version)


def test_restore_to_an_identical_document_is_the_empty_update() -> None:
    live = replica(edited(sample()))
    before = live.get_state()
    assert restore_update(live, live.get_update()) == EMPTY_UPDATE
    # Same content, built separately: different history, nothing to change.
    assert restore_update(live, edited(sample()).get_update()) == EMPTY_UPDATE
    assert live.get_state() == before


def test_locally_written_ints_equal_received_floats() -> None:
    live = edited(sample())  # built here: integers read back as int
    received = replica(live)  # decoded from an update: the same integers read back as float
    assert clip_field(received, "c1", "duration_ms") == 3000
    assert isinstance(clip_field(received, "c1", "duration_ms"), float)
    updates: list[bytes] = []
    live.observe(lambda event: updates.append(event.update))
    restore_to(live, received)
    restore_to(received, live)
    assert updates == []


def test_int_and_float_are_equal_but_bool_and_number_are_not() -> None:
    live = remote(lambda d: d.get("clips", type=Map).update({"n": 1000, "flag": 1, "x": 1.5}))
    target = remote(
        lambda d: d.get("clips", type=Map).update({"n": 1000.0, "flag": True, "x": 1.5})
    )
    watcher = replica(live)
    watcher.apply_update(restore_update(live, target.get_update()))
    values = watcher.get(ROOT_CLIPS, type=Map).to_py()
    assert values == {"n": 1000.0, "flag": True, "x": 1.5}
    assert values is not None and values["flag"] is True


def test_restoring_the_restore_point_undoes_the_restore() -> None:
    version = sample()
    live = edited(version)
    watcher = replica(live)
    restore_point = live.get_update()  # saved just before the restore
    before = timeline_json(live)

    watcher.apply_update(restore_update(live, version.get_update()))
    assert timeline_json(watcher) == timeline_json(version)

    watcher.apply_update(restore_update(live, restore_point))
    assert timeline_json(live) == before
    assert timeline_json(watcher) == before


def test_restore_is_one_transaction_with_the_restore_origin() -> None:
    version = sample()
    live = replica(edited(version))
    updates: list[bytes] = []
    origins: list[Any] = []
    live.observe(lambda event: updates.append(event.update))
    roots = [live.get(name, type=Map) for name in ROOTS]  # observers live as long as these
    for root in roots:
        root.observe_deep(lambda events: origins.append(events[0].transaction.origin))

    restore_to(live, version)

    assert len(updates) == 1
    assert origins and set(origins) == {RESTORE_ORIGIN}
    assert timeline_json(live) == timeline_json(version)


def test_restore_inside_the_callers_restore_transaction() -> None:
    version = sample()
    live = edited(version)
    watcher = replica(live)
    with live.transaction(origin=RESTORE_ORIGIN):
        update = restore_update(live, version.get_update())
    watcher.apply_update(update)
    assert timeline_json(watcher) == timeline_json(version)


def test_undecodable_version_state_raises_value_error() -> None:
    live = sample()
    with pytest.raises(ValueError):
        restore_update(live, b"\xff\xff\xff")


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_edit_of_an_untouched_field_survives() -> None:
    version = sample()
    live = edited(version)  # c1 trimmed, c3's text changed, ...
    collaborator = replica(live)

    # Meanwhile a collaborator moves c1 and sets c3's volume: fields the restore leaves alone.
    move_clip(collaborator, "c1", start_ms=250)
    set_clip_volume(collaborator, "c3", 0.5)
    restore_update(live, version.get_update())
    sync(live, collaborator)

    assert content(live) == content(collaborator)
    for doc in (live, collaborator):
        assert clip_field(doc, "c1", "start_ms") == 250  # the collaborator's edit
        assert clip_field(doc, "c1", "duration_ms") == 4000  # restored
        assert clip_field(doc, "c3", "volume") == 0.5  # the collaborator's edit
        assert clip_field(doc, "c3", "text") == "Hello"  # restored


def test_concurrent_edit_of_a_restored_field_converges() -> None:
    version = sample()
    live = edited(version)
    first, second = replica(live), replica(live)

    trim_clip(first, "c1", duration_ms=1234)  # the restore sets 4000 on the same field
    update = restore_update(live, version.get_update())
    second.apply_update(update)
    first_update = first.get_update(live.get_state())
    first.apply_update(update)
    live.apply_update(first_update)
    second.apply_update(first_update)

    results = {clip_field(doc, "c1", "duration_ms") for doc in (live, first, second)}
    assert len(results) == 1  # every replica picked the same winner
    assert results <= {1234, 4000}
    assert content(live) == content(first) == content(second)
    assert timeline_json(live) == timeline_json(first) == timeline_json(second)


def test_clip_deleted_concurrently_stays_deleted_when_restore_only_edits_it() -> None:
    version = sample()
    live = edited(version)
    collaborator = replica(live)
    delete_clip(collaborator, "c1")
    restore_update(live, version.get_update())  # changes c1's fields in place
    sync(live, collaborator)
    assert content(live) == content(collaborator)
    assert read_timeline(live).clip("c1") is None


# --- malformed and unusual content -----------------------------------------------------------


def test_malformed_live_content_is_replaced_as_the_version_dictates() -> None:
    version = sample()

    def scribble(doc: Doc[Any]) -> None:
        doc.apply_update(sample().get_update())
        clips = doc.get(ROOT_CLIPS, type=Map)
        clips["c1"] = "not a clip"  # the version has a real c1 here
        clips["junk"] = Array([1, 2, Map({"a": 1})])  # not in the version at all
        clips["c2"] = {"track": "v1", "kind": "video", "start_ms": 4000, "duration_ms": 2000}
        tracks = doc.get(ROOT_TRACKS, type=Map)
        tracks["v9"] = Array(["x"])
        doc.get(ROOT_ASSETS, type=Map)["a1"] = Text("s3://media/intro.mp4")
        doc.get(ROOT_PROJECT, type=Map)["fps"] = "fast"

    live = remote(scribble)
    assert read_timeline(live).problems
    watcher = replica(live)

    watcher.apply_update(restore_update(live, version.get_update()))

    assert timeline_json(watcher) == timeline_json(version)
    assert read_timeline(watcher).problems == ()
    assert content(watcher) == content(version)


def test_malformed_version_content_is_restored_as_it_was() -> None:
    def scribble(doc: Doc[Any]) -> None:
        doc.apply_update(sample().get_update())
        clips = doc.get(ROOT_CLIPS, type=Map)
        clips["c9"] = "a string clip"
        clips["c8"] = Array([1, "two", Map({"three": 3}), Text("four")])
        doc.get(ROOT_TRACKS, type=Map)["v1"]["muted"] = "yes"

    version = remote(scribble)
    live = edited(sample())
    watcher = replica(live)
    watcher.apply_update(restore_update(live, version.get_update()))
    assert timeline_json(watcher) == timeline_json(version)
    assert content(watcher) == content(version)
    assert isinstance(watcher.get(ROOT_CLIPS, type=Map)["c8"], Array)


def test_a_map_and_a_plain_object_with_equal_fields_are_different() -> None:
    fields = {"track": "v1", "kind": "video", "start_ms": 0, "duration_ms": 10}
    as_object = remote(lambda d: d.get(ROOT_CLIPS, type=Map).update({"c1": dict(fields)}))
    as_map = remote(lambda d: d.get(ROOT_CLIPS, type=Map).update({"c1": Map(dict(fields))}))
    live = replica(as_object)

    restore_update(live, as_map.get_update())
    assert isinstance(live.get(ROOT_CLIPS, type=Map)["c1"], Map)
    restore_update(live, as_object.get_update())
    assert isinstance(live.get(ROOT_CLIPS, type=Map)["c1"], dict)
    assert read_timeline(live).problems  # a plain object is not a valid clip


def test_nested_shared_types_are_deep_copied_with_formatting() -> None:
    def build(doc: Doc[Any]) -> None:
        notes = doc.get("notes", type=Map)
        notes["n1"] = Map({"body": Text("héllo 😀 world"), "tags": Array(["a", Map({"b": 2})])})
        body = notes["n1"]["body"]
        body.format(0, 3, {"bold": True})
        body.insert_embed(4, {"image": "x.png"}, {"width": 40})

    version = remote(build)
    live: Doc[Any] = Doc()
    watcher = replica(live)
    watcher.apply_update(restore_update(live, version.get_update()))

    expected = version.get("notes", type=Map)["n1"]
    got = watcher.get("notes", type=Map)["n1"]
    assert got["body"].diff() == expected["body"].diff()
    assert got["tags"].to_py() == expected["tags"].to_py()
    assert isinstance(got["tags"][1], Map)
    assert restore_update(live, version.get_update()) == EMPTY_UPDATE


def test_extra_map_roots_are_restored_and_sequence_roots_left_alone() -> None:
    def build_live(doc: Doc[Any]) -> None:
        doc.get("markers", type=Map).update({"m1": 1, "m2": 2})
        doc.get("log", type=Array).extend(["kept"])
        doc.get("later", type=Map)["x"] = 1  # a root the version does not have

    def build_version(doc: Doc[Any]) -> None:
        doc.get("markers", type=Map).update({"m1": 10})
        doc.get("log", type=Array).extend(["old"])

    live = remote(build_live)
    version = remote(build_version)
    restore_update(live, version.get_update())

    assert live.get("markers", type=Map).to_py() == {"m1": 10}
    assert live.get("later", type=Map).to_py() == {}
    assert live.get("log", type=Array).to_py() == ["kept"]


def test_roots_typed_as_sequences_are_not_diffed() -> None:
    live: Doc[Any] = Doc()
    live.get("log", type=Array).append("kept")
    version = remote(lambda d: d.get("log", type=Map).update({"k": 1}))
    assert restore_update(live, version.get_update()) == EMPTY_UPDATE
    assert live.get("log", type=Array).to_py() == ["kept"]


def test_restoring_an_empty_version_empties_the_timeline() -> None:
    live = edited(sample())
    watcher = replica(live)
    watcher.apply_update(restore_update(live, Doc().get_update()))
    assert timeline_json(watcher) == timeline_json(Doc())
    assert content(watcher) == {name: {} for name in ROOTS}


# --- property: any timeline restores to any other --------------------------------------------

_IDS = st.sampled_from(["a", "b", "c", "d"])


@st.composite
def timelines(draw: st.DrawFn, base: Doc[Any] | None = None) -> Doc[Any]:
    """A timeline built with the writers, from scratch or as more edits on ``base``."""
    doc = replica(base) if base is not None else new_project_doc(draw(st.text(max_size=8)))
    if draw(st.booleans()):
        set_project_fields(doc, fps=draw(st.sampled_from([24, 25, 29.97, 30])))
    tracks = read_timeline(doc)
    track_ids = [t.id for t in tracks.tracks]
    for track_id in draw(st.lists(_IDS, max_size=3, unique=True)):
        if track_id not in track_ids:
            kind = draw(st.sampled_from(["video", "audio", "subtitle", "overlay"]))
            track_ids.append(add_track(doc, kind, draw(st.text(max_size=5)), track_id=track_id))
        elif draw(st.booleans()):
            set_track_flags(doc, track_id, muted=draw(st.booleans()))
    asset_ids = [a.id for a in read_timeline(doc).assets]
    if draw(st.booleans()) and "x" not in asset_ids:
        asset_ids.append(add_asset(doc, "video", "x.mp4", "s3://x", asset_id="x"))
    existing = {c.id for c in read_timeline(doc).clips}
    for clip_id in draw(st.lists(st.sampled_from(["c1", "c2", "c3", "c4", "c5"]), max_size=5)):
        if clip_id in existing:
            action = draw(st.sampled_from(["move", "trim", "text", "delete"]))
            if action == "move":
                move_clip(doc, clip_id, start_ms=draw(st.integers(0, 10_000)))
            elif action == "trim":
                trim_clip(doc, clip_id, duration_ms=draw(st.integers(1, 5000)))
            elif action == "text":
                set_clip_text(doc, clip_id, draw(st.none() | st.text(max_size=6)))
            else:
                delete_clip(doc, clip_id)
                existing.discard(clip_id)
        elif track_ids:
            add_clip(
                doc,
                draw(st.sampled_from(track_ids)),
                draw(st.sampled_from(["video", "audio", "image", "subtitle", "title"])),
                start_ms=draw(st.integers(0, 10_000)),
                duration_ms=draw(st.integers(1, 5000)),
                asset=draw(st.sampled_from([None, *asset_ids])),
                volume=draw(st.sampled_from([0, 0.5, 1, 1.5])),
                text=draw(st.none() | st.text(max_size=6)),
                clip_id=clip_id,
            )
            existing.add(clip_id)
    return doc


@st.composite
def timeline_pairs(draw: st.DrawFn) -> tuple[Doc[Any], Doc[Any]]:
    """Two unrelated timelines, or a timeline and a later version of it (shared history)."""
    first = draw(timelines())
    second = draw(timelines(base=first) if draw(st.booleans()) else timelines())
    return (first, second) if draw(st.booleans()) else (second, first)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timeline_pairs())
def test_any_timeline_restores_to_any_other(pair: tuple[Doc[Any], Doc[Any]]) -> None:
    a, b = pair
    live = replica(a)
    watcher = replica(a)
    watcher.apply_update(restore_update(live, b.get_update()))
    assert timeline_json(live) == timeline_json(b)
    assert timeline_json(watcher) == timeline_json(b)
    assert content(watcher) == content(b)
    assert restore_update(live, b.get_update()) == EMPTY_UPDATE

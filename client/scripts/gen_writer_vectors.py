"""Test vectors for the TypeScript timeline writers, made by the server's ``crdt.timeline``.

A fixed sequence of edits, valid and invalid, runs on one document; for each edit the vectors
record ``ok`` and the timeline read after it, or the name of the ``TimelineError`` subclass it
raised. ``client/test/unit/writerVectors.test.ts`` replays the sequence with the TS writers
and must get the same outcomes and the same timelines; ``tests/client/test_generated_files.py``
fails when this file no longer matches what the Python writers do.

    PYTHONPATH=. python client/scripts/gen_writer_vectors.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from crdt import timeline as tl

VECTORS_PATH = Path(__file__).resolve().parents[1] / "test" / "vectors" / "timeline_writers.json"
BIG = 2**53

# (writer, arguments) with the TS writers' argument names; ``raw_set`` writes client content
# of the wrong shape, as a buggy client could.
EDITS: list[tuple[str, dict[str, Any]]] = [
    ("init_project", {"title": "Film", "fps": 25}),
    ("init_project", {"title": "Ignored", "width": 1280}),
    ("init_project", {"title": 5}),
    ("set_project_fields", {"fields": {"title": "Film 2", "height": 720}}),
    ("set_project_fields", {"fields": {"fps": 0}}),
    ("set_project_fields", {"fields": {"fps": -1.5}}),
    ("set_project_fields", {"fields": {"width": 1.5}}),
    ("set_project_fields", {"fields": {"width": True}}),
    ("set_project_fields", {"fields": {"colour": "red"}}),
    ("set_project_fields", {"fields": {"thumbnail_asset": "nope"}}),
    ("add_track", {"kind": "video", "name": "V1", "id": "v1"}),
    ("add_track", {"kind": "audio", "name": "A1", "id": "a1"}),
    ("add_track", {"kind": "subtitle", "name": "S1", "id": "s1", "after": "v1"}),
    ("add_track", {"kind": "overlay", "name": "O1", "id": "o1", "after": "s1"}),
    ("add_track", {"kind": "music", "name": "x", "id": "bad"}),
    ("add_track", {"kind": "video", "name": 3, "id": "bad"}),
    ("add_track", {"kind": "video", "name": "dup", "id": "v1"}),
    ("add_track", {"kind": "video", "name": "x", "id": "", "after": "v1"}),
    ("add_track", {"kind": "video", "name": "x", "id": "bad", "after": "nope"}),
    ("move_track", {"track": "a1", "after": None}),
    ("move_track", {"track": "v1", "after": "o1"}),
    ("move_track", {"track": "v1", "after": "v1"}),
    ("move_track", {"track": "nope", "after": None}),
    ("move_track", {"track": "s1", "after": "nope"}),
    ("rename_track", {"track": "a1", "name": "Music"}),
    ("rename_track", {"track": "a1", "name": None}),
    ("rename_track", {"track": "nope", "name": "x"}),
    ("set_track_flags", {"track": "a1", "flags": {"muted": True}}),
    ("set_track_flags", {"track": "a1", "flags": {"locked": 1}}),
    ("set_track_flags", {"track": "nope", "flags": {"muted": False}}),
    ("add_asset", {"kind": "video", "name": "take", "uri": "s3://b/take.mp4", "id": "m1"}),
    (
        "add_asset",
        {
            "kind": "image",
            "name": "still",
            "uri": "s3://b/s.png",
            "duration_ms": 5000,
            "origin": "ai:image",
            "id": "m2",
        },
    ),
    ("add_asset", {"kind": "video", "name": "x", "uri": "", "id": "bad"}),
    ("add_asset", {"kind": "text", "name": "x", "uri": "u", "id": "bad"}),
    ("add_asset", {"kind": "video", "name": "x", "uri": "u", "duration_ms": 0, "id": "bad"}),
    ("add_asset", {"kind": "video", "name": "x", "uri": "u", "origin": "", "id": "bad"}),
    ("add_asset", {"kind": "video", "name": "x", "uri": "u", "id": "m1"}),
    ("set_project_fields", {"fields": {"thumbnail_asset": "m2"}}),
    (
        "add_clip",
        {
            "track": "v1",
            "kind": "video",
            "start_ms": 0,
            "duration_ms": 4000,
            "asset": "m1",
            "id": "c1",
        },
    ),
    (
        "add_clip",
        {
            "track": "v1",
            "kind": "video",
            "start_ms": 4000,
            "duration_ms": 1000,
            "asset": "m1",
            "source_in_ms": 250,
            "volume": 0.5,
            "id": "c2",
        },
    ),
    (
        "add_clip",
        {
            "track": "s1",
            "kind": "subtitle",
            "start_ms": 100,
            "duration_ms": 900,
            "text": "Hello",
            "id": "c3",
        },
    ),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": -1, "duration_ms": 10, "id": "bad"}),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": 0, "duration_ms": 0, "id": "bad"}),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": 0.5, "duration_ms": 9, "id": "bad"}),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": BIG, "duration_ms": 9, "id": "bad"}),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": True, "duration_ms": 9, "id": "bad"}),
    ("add_clip", {"track": "v1", "kind": "film", "start_ms": 0, "duration_ms": 9, "id": "bad"}),
    (
        "add_clip",
        {
            "track": "v1",
            "kind": "video",
            "start_ms": 0,
            "duration_ms": 9,
            "volume": -1,
            "id": "bad",
        },
    ),
    (
        "add_clip",
        {"track": "v1", "kind": "video", "start_ms": 0, "duration_ms": 9, "text": 7, "id": "bad"},
    ),
    ("add_clip", {"track": "nope", "kind": "video", "start_ms": 0, "duration_ms": 9, "id": "bad"}),
    ("add_clip", {"track": "", "kind": "video", "start_ms": 0, "duration_ms": 9, "id": "bad"}),
    (
        "add_clip",
        {
            "track": "v1",
            "kind": "video",
            "start_ms": 0,
            "duration_ms": 9,
            "asset": "no",
            "id": "bad",
        },
    ),
    ("add_clip", {"track": "v1", "kind": "video", "start_ms": 0, "duration_ms": 9, "id": "c1"}),
    ("move_clip", {"clip": "c1", "to": {"start_ms": 500, "track": "a1"}}),
    ("move_clip", {"clip": "c1", "to": {"start_ms": -5}}),
    ("move_clip", {"clip": "c1", "to": {"start_ms": 5, "track": "nope"}}),
    ("move_clip", {"clip": "nope", "to": {"start_ms": 5}}),
    ("trim_clip", {"clip": "c2", "timing": {"duration_ms": 1500, "source_in_ms": 0}}),
    ("trim_clip", {"clip": "c2", "timing": {"start_ms": 5, "duration_ms": -1}}),
    ("trim_clip", {"clip": "nope", "timing": {"start_ms": 5}}),
    ("set_clip_text", {"clip": "c3", "text": "Hello again"}),
    ("set_clip_text", {"clip": "c3", "text": 5}),
    ("set_clip_volume", {"clip": "c2", "volume": 2}),
    ("set_clip_volume", {"clip": "c2", "volume": None}),
    ("delete_asset", {"asset": "m1"}),
    ("delete_asset", {"asset": "nope"}),
    ("raw_set", {"root": "clips", "key": "junk", "value": "not a map"}),
    ("trim_clip", {"clip": "junk", "timing": {"start_ms": 1}}),
    ("move_clip", {"clip": "junk", "to": {"start_ms": 1}}),
    ("delete_clip", {"clip": "junk"}),
    ("raw_set", {"root": "tracks", "key": "odd", "value": 12}),
    ("rename_track", {"track": "odd", "name": "x"}),
    ("add_track", {"kind": "video", "name": "after odd", "id": "v9", "after": "odd"}),
    ("delete_track", {"track": "odd"}),
    ("delete_clip", {"clip": "nope"}),
    ("delete_clip", {"clip": None}),
    ("set_clip_text", {"clip": "c3", "text": None}),
    ("delete_asset", {"asset": "m2"}),
    ("delete_asset", {"asset": "m1", "cascade": True}),
    ("delete_track", {"track": "s1"}),
    ("delete_track", {"track": "nope"}),
    ("add_asset", {"kind": "video", "name": "x", "uri": "u", "id": "m3"}),
    ("set_title", {"title": "Final"}),
]


def _py_call(doc: Doc[Any], name: str, a: dict[str, Any]) -> None:
    calls: dict[str, Callable[[], object]] = {
        "init_project": lambda: tl.init_project(
            doc,
            a["title"],
            a.get("fps", tl.DEFAULT_FPS),
            a.get("width", tl.DEFAULT_WIDTH),
            a.get("height", tl.DEFAULT_HEIGHT),
        ),
        "set_project_fields": lambda: tl.set_project_fields(doc, **a["fields"]),
        "set_title": lambda: tl.set_project_fields(doc, title=a["title"]),
        "add_track": lambda: tl.add_track(
            doc, a["kind"], a["name"], track_id=a.get("id"), after=a.get("after")
        ),
        "move_track": lambda: tl.move_track(doc, a["track"], after=a["after"]),
        "rename_track": lambda: tl.rename_track(doc, a["track"], a["name"]),
        "set_track_flags": lambda: tl.set_track_flags(doc, a["track"], **a["flags"]),
        "delete_track": lambda: tl.delete_track(doc, a["track"]),
        "add_asset": lambda: tl.add_asset(
            doc,
            a["kind"],
            a["name"],
            a["uri"],
            duration_ms=a.get("duration_ms"),
            origin=a.get("origin", tl.DEFAULT_ORIGIN),
            asset_id=a.get("id"),
        ),
        "delete_asset": lambda: tl.delete_asset(doc, a["asset"], cascade=a.get("cascade", False)),
        "add_clip": lambda: tl.add_clip(
            doc,
            a["track"],
            a["kind"],
            start_ms=a["start_ms"],
            duration_ms=a["duration_ms"],
            asset=a.get("asset"),
            source_in_ms=a.get("source_in_ms", 0),
            volume=a.get("volume", tl.DEFAULT_VOLUME),
            text=a.get("text"),
            clip_id=a.get("id"),
        ),
        "move_clip": lambda: tl.move_clip(
            doc, a["clip"], start_ms=a["to"]["start_ms"], track_id=a["to"].get("track")
        ),
        "trim_clip": lambda: tl.trim_clip(doc, a["clip"], **a["timing"]),
        "set_clip_text": lambda: tl.set_clip_text(doc, a["clip"], a["text"]),
        "set_clip_volume": lambda: tl.set_clip_volume(doc, a["clip"], a["volume"]),
        "delete_clip": lambda: tl.delete_clip(doc, a["clip"]),
        "raw_set": lambda: doc.get(a["root"], type=Map).__setitem__(a["key"], a["value"]),
    }
    calls[name]()


def _outcome(doc: Doc[Any], name: str, args: dict[str, Any]) -> str:
    try:
        _py_call(doc, name, args)
    except tl.TimelineError as exc:
        return type(exc).__name__
    return "ok"


def vectors() -> dict[str, Any]:
    doc: Doc[Any] = Doc()
    steps = []
    for name, args in EDITS:
        step: dict[str, Any] = {"edit": name, "args": args, "outcome": _outcome(doc, name, args)}
        # A refused edit leaves the timeline as it was; only accepted ones record it.
        if step["outcome"] == "ok":
            step["timeline"] = tl.read_timeline(doc).to_json()
        steps.append(step)
    return {"generator": "client/scripts/gen_writer_vectors.py", "steps": steps}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    VECTORS_PATH.write_text(render(vectors()), encoding="utf-8")
    print(f"wrote {VECTORS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

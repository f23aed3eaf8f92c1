"""The tolerant side of the timeline: ``read_timeline`` (pure, no I/O).

Browsers can write anything into the document, so the reader never raises because of its
content: it reports every deviation as a ``Problem`` and skips or defaults what it cannot use.
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from pycrdt import Doc, Map

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

from crdt.timeline.schema import (
    _FIELDS_BY_NAME,
    _INVALID,
    _PROJECT_FIELDS,
    CLIP_ASSET,
    CLIP_TRACK,
    PROJECT_THUMBNAIL_ASSET,
    ROOT_ASSETS,
    ROOT_CLIPS,
    ROOT_PROJECT,
    ROOT_TRACKS,
    ROOTS,
    Asset,
    Clip,
    Problem,
    ProjectInfo,
    Timeline,
    Track,
    _describe,
    _Field,
)

# --- Reader ----------------------------------------------------------------------------------


def read_timeline(doc: Doc[Any]) -> Timeline:
    """Read a validated snapshot of the timeline. Never raises because of document content.

    Policy for malformed content (each case is reported as a ``Problem``):

    - a root that is not a map (e.g. a ``Y.Array``) is ignored;
    - an entry of ``tracks``/``clips``/``assets`` that is not a ``Y.Map`` (a plain object, a
      string, ...) is skipped;
    - an entity whose *required* field is missing or bad is skipped: a track's ``kind``; a
      clip's ``track``, ``kind``, ``start_ms``, ``duration_ms``; an asset's ``kind``, ``uri``.
      Guessing where a clip sits or what it is would show something nobody made;
    - a clip whose track does not exist (e.g. deleted concurrently) is skipped;
    - any other bad field is replaced by its default (missing optional fields take the default
      without a report); a reference to a missing asset becomes ``None``.

    Integral floats (``1000.0``) are valid integers; other floats, NaN, infinities, booleans and
    numbers beyond 2**53 are not. Unknown extra fields are ignored (newer clients may add some).
    A root that was never created reads as empty; an empty document gives an empty timeline
    without problems. Must be called outside any read-only transaction (i.e. not from inside a
    document observer).
    """
    problems: list[Problem] = []
    with doc.transaction():
        roots = _read_roots(doc, problems)
        project = _read_entity(roots[ROOT_PROJECT], ROOT_PROJECT, _PROJECT_FIELDS, problems) or {}
        raw_tracks = _read_entities(roots[ROOT_TRACKS], ROOT_TRACKS, "track", problems)
        raw_clips = _read_entities(roots[ROOT_CLIPS], ROOT_CLIPS, "clip", problems)
        raw_assets = _read_entities(roots[ROOT_ASSETS], ROOT_ASSETS, "asset", problems)

    assets = tuple(Asset(id=key, **fields) for key, fields in sorted(raw_assets.items()))
    asset_ids = {asset.id for asset in assets}
    tracks = tuple(
        sorted(
            (Track(id=key, **fields) for key, fields in raw_tracks.items()),
            key=lambda t: (t.order, t.id),
        )
    )
    clips = _resolve_clips(raw_clips, tracks, asset_ids, problems)
    project = _resolve_asset_ref(
        project, PROJECT_THUMBNAIL_ASSET, ROOT_PROJECT, asset_ids, problems
    )
    return Timeline(
        project=ProjectInfo(**project),
        tracks=tracks,
        clips=clips,
        assets=assets,
        problems=tuple(sorted(problems, key=lambda p: (p.path, p.message))),
    )


def _read_roots(doc: Doc[Any], problems: list[Problem]) -> dict[str, Map[Any] | None]:
    """Each timeline root as a ``Map``, or ``None`` when absent or of another type."""
    present = _guarded(lambda: dict(doc.items()), {}, "(roots)", problems)
    roots: dict[str, Map[Any] | None] = {}
    for name in ROOTS:
        value = present.get(name)
        if name not in present:
            roots[name] = None
        elif value is not None and not isinstance(value, Map):
            problems.append(Problem(name, f"expected a map, got {_describe(value)}; root ignored"))
            roots[name] = None
        else:
            # A root that only arrived through an update has no type yet: view it as a map.
            roots[name] = doc.get(name, type=Map)
    return roots


# What the Rust-to-Python conversion of pycrdt raises on content it cannot represent.
_CONVERSION_ERRORS: Final = (RuntimeError, TypeError, ValueError, KeyError)


def _guarded(read: Callable[[], Any], fallback: Any, path: str, problems: list[Problem]) -> Any:
    """Run one read of client content; report instead of raising if pycrdt cannot convert it,
    so one unconvertible value does not hide the rest of the timeline."""
    try:
        return read()
    except _CONVERSION_ERRORS as exc:
        problems.append(Problem(path, f"unreadable value ({type(exc).__name__}); ignored"))
        return fallback


def _read_entities(
    root: Map[Any] | None, root_name: str, label: str, problems: list[Problem]
) -> dict[str, dict[str, Any]]:
    """Validated fields of every well-formed entry of an id-keyed root."""
    if root is None:
        return {}
    fields = tuple(_FIELDS_BY_NAME[root_name].values())
    entities: dict[str, dict[str, Any]] = {}
    # Sorted so problems and results never depend on pycrdt's key iteration order.
    for key in sorted(_guarded(lambda: list(root.keys()), [], root_name, problems)):
        path = f"{root_name}/{key}"
        value = _guarded(partial(root.__getitem__, key), _INVALID, path, problems)
        if value is _INVALID:
            continue
        if not isinstance(value, Map):
            problems.append(
                Problem(path, f"expected a map, got {_describe(value)}; {label} skipped")
            )
            continue
        entity = _read_entity(value, path, fields, problems, label)
        if entity is not None:
            entities[key] = entity
    return entities


def _read_entity(
    entry: Map[Any] | None,
    path: str,
    fields: tuple[_Field, ...],
    problems: list[Problem],
    label: str = "",
) -> dict[str, Any] | None:
    """Field values of one map by the ``_Field`` policy; ``None`` if a required one is bad."""
    raw: Mapping[str, Any] = {}
    if entry is not None:
        raw = _guarded(lambda: dict(entry.items()), {}, path, problems)
    values: dict[str, Any] = {}
    complete = True
    for field in fields:
        field_path = f"{path}/{field.name}"
        present = field.name in raw and not (field.nullable and raw[field.name] is None)
        value = field.check(raw[field.name]) if present else _INVALID
        if value is not _INVALID:
            values[field.name] = value
            continue
        values[field.name] = field.default
        outcome = f"{label} skipped" if field.required else f"using {json.dumps(field.default)}"
        if present:
            got = _describe(raw[field.name])
            problems.append(Problem(field_path, f"expected {field.expected}, got {got}; {outcome}"))
        elif field.required:
            problems.append(Problem(field_path, f"missing; {outcome}"))
        complete = complete and not field.required
    return values if complete else None


def _resolve_asset_ref(
    fields: dict[str, Any], name: str, path: str, asset_ids: set[str], problems: list[Problem]
) -> dict[str, Any]:
    """Drop a reference to an asset that does not exist (deleted, or never synced)."""
    ref = fields.get(name)
    if ref is None or ref in asset_ids:
        return fields
    problems.append(Problem(f"{path}/{name}", f"unknown asset {ref!r}; using null"))
    return {**fields, name: None}


def _resolve_clips(
    raw_clips: dict[str, dict[str, Any]],
    tracks: tuple[Track, ...],
    asset_ids: set[str],
    problems: list[Problem],
) -> tuple[Clip, ...]:
    position = {track.id: index for index, track in enumerate(tracks)}
    clips: list[Clip] = []
    for key, fields in raw_clips.items():
        path = f"{ROOT_CLIPS}/{key}"
        track_id = fields[CLIP_TRACK]
        if track_id not in position:
            problems.append(
                Problem(f"{path}/{CLIP_TRACK}", f"unknown track {track_id!r}; clip skipped")
            )
            continue
        fields = _resolve_asset_ref(fields, CLIP_ASSET, path, asset_ids, problems)
        clips.append(Clip(id=key, **fields))
    clips.sort(key=lambda c: (position[c.track], c.start_ms, c.id))
    return tuple(clips)



"""The strict side of the timeline: writers (pure, no I/O).

They validate their arguments against the same field rules the reader uses, raise
``TimelineError`` subclasses, and each runs in one transaction, so one call is one update on
the wire and a refused call writes nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Map

from crdt.fractional_index import is_valid_key, key_between, spread_keys

if TYPE_CHECKING:
    from collections.abc import Mapping

from crdt.timeline.schema import (
    _FIELDS_BY_NAME,
    _INVALID,
    ASSET_DURATION_MS,
    ASSET_KIND,
    ASSET_NAME,
    ASSET_ORIGIN,
    ASSET_URI,
    CLIP_ASSET,
    CLIP_DURATION_MS,
    CLIP_KIND,
    CLIP_SOURCE_IN_MS,
    CLIP_START_MS,
    CLIP_TEXT,
    CLIP_TRACK,
    CLIP_VOLUME,
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_ORIGIN,
    DEFAULT_VOLUME,
    DEFAULT_WIDTH,
    PROJECT_FPS,
    PROJECT_HEIGHT,
    PROJECT_THUMBNAIL_ASSET,
    PROJECT_TITLE,
    PROJECT_WIDTH,
    ROOT_ASSETS,
    ROOT_CLIPS,
    ROOT_PROJECT,
    ROOT_TRACKS,
    TRACK_KIND,
    TRACK_LOCKED,
    TRACK_MUTED,
    TRACK_NAME,
    TRACK_ORDER,
    AssetInUseError,
    AssetKind,
    ClipKind,
    DuplicateIdError,
    InvalidValueError,
    MalformedDocumentError,
    TimelineError,
    TrackKind,
    UnknownAssetError,
    UnknownClipError,
    UnknownTrackError,
    _describe,
)

# --- Writers: shared helpers -----------------------------------------------------------------


def _validated(root_name: str, field_name: str, value: Any) -> Any:
    """Writer-side validation with the same rules the reader applies to stored values."""
    field = _FIELDS_BY_NAME[root_name][field_name]
    checked = field.check(value)
    if checked is _INVALID:
        raise InvalidValueError(f"{field_name} must be {field.expected}, got {value!r}")
    return checked


def _validated_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _root_for_write(doc: Doc[Any], name: str) -> Map[Any]:
    current = dict(doc.items()).get(name)
    if current is not None and not isinstance(current, Map):
        raise MalformedDocumentError(f"root {name!r} is {_describe(current)}, not a map")
    root: Map[Any] = doc.get(name, type=Map)
    return root


def _entry(root: Map[Any], key: str, label: str, missing: type[TimelineError]) -> Map[Any]:
    """The ``Y.Map`` of an existing entity, or the right error."""
    _validated_id(key, f"{label} id")
    if key not in root:
        raise missing(f"unknown {label} {key!r}")
    value = root[key]
    if not isinstance(value, Map):
        raise MalformedDocumentError(f"{label} {key!r} is {_describe(value)}, not a map")
    return value


def _new_id(root: Map[Any], requested: str | None, label: str) -> str:
    if requested is None:
        return uuid.uuid4().hex
    _validated_id(requested, f"{label} id")
    if requested in root:
        raise DuplicateIdError(f"{label} {requested!r} already exists")
    return requested


def _same(current: Any, new: Any) -> bool:
    """Stored value equals ``new``, treating ``1000.0`` as ``1000`` but ``1`` not as ``True``."""
    if isinstance(current, bool) or isinstance(new, bool):
        return current is new
    if isinstance(current, int | float) and isinstance(new, int | float):
        return current == new
    return type(current) is type(new) and current == new


def _set_fields(entry: Map[Any], values: Mapping[str, Any]) -> None:
    """Write only the fields that change, so an edit never overwrites a concurrent edit of the
    same field with the value it already had."""
    for name, value in values.items():
        if value is None:
            if name in entry:
                del entry[name]
        elif name not in entry or not _same(entry[name], value):
            entry[name] = value


# --- Writers: project ------------------------------------------------------------------------


def new_project_doc(
    title: str, fps: float = DEFAULT_FPS, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT
) -> Doc[Any]:
    """A fresh document holding an initialised project."""
    doc: Doc[Any] = Doc()
    init_project(doc, title, fps, width, height)
    return doc


def init_project(
    doc: Doc[Any],
    title: str,
    fps: float = DEFAULT_FPS,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> None:
    """Set the project fields that are not set yet; existing values are kept (idempotent)."""
    values = {
        PROJECT_TITLE: _validated(ROOT_PROJECT, PROJECT_TITLE, title),
        PROJECT_FPS: _validated(ROOT_PROJECT, PROJECT_FPS, fps),
        PROJECT_WIDTH: _validated(ROOT_PROJECT, PROJECT_WIDTH, width),
        PROJECT_HEIGHT: _validated(ROOT_PROJECT, PROJECT_HEIGHT, height),
    }
    with doc.transaction():
        project = _root_for_write(doc, ROOT_PROJECT)
        for name, value in values.items():
            if name not in project:
                project[name] = value


def set_project_fields(doc: Doc[Any], **fields: Any) -> None:
    """Set any of title, fps, width, height, thumbnail_asset (``thumbnail_asset=None`` clears)."""
    allowed = _FIELDS_BY_NAME[ROOT_PROJECT]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidValueError(f"unknown project field(s): {', '.join(unknown)}")
    values = {
        name: None
        if name == PROJECT_THUMBNAIL_ASSET and value is None
        else _validated(ROOT_PROJECT, name, value)
        for name, value in fields.items()
    }
    with doc.transaction():
        thumbnail = values.get(PROJECT_THUMBNAIL_ASSET)
        if thumbnail is not None:
            _entry(_root_for_write(doc, ROOT_ASSETS), thumbnail, "asset", UnknownAssetError)
        _set_fields(_root_for_write(doc, ROOT_PROJECT), values)


# --- Writers: tracks -------------------------------------------------------------------------


def _track_sequence(tracks: Map[Any]) -> list[tuple[str, str]]:
    """``(id, order)`` of every track entry in display order, with the reader's order default."""
    sequence = []
    for track_id in tracks.keys():
        entry = tracks[track_id]
        if isinstance(entry, Map):
            order = entry.get(TRACK_ORDER)
            sequence.append((track_id, order if isinstance(order, str) else ""))
    sequence.sort(key=lambda item: (item[1], item[0]))
    return sequence


def _place(
    sequence: list[tuple[str, str]], index: int, current: str | None = None
) -> tuple[str, dict[str, str]]:
    """Order key for a track going to ``index`` of ``sequence`` (which excludes it), plus new
    keys for other tracks when they have to be renumbered."""
    low = sequence[index - 1][1] if index > 0 else None
    high = sequence[index][1] if index < len(sequence) else None
    if current is not None and is_valid_key(current):
        if (low is None or low < current) and (high is None or current < high):
            return current, {}
    try:
        return key_between(low, high), {}
    except ValueError:
        # The neighbours tie (two replicas inserted at the same spot at once) or hold keys we
        # cannot split (written by another client): renumber every track, keeping their order.
        keys = spread_keys(len(sequence) + 1)
        new_key = keys.pop(index)
        return new_key, {track_id: key for (track_id, _), key in zip(sequence, keys, strict=True)}


def _apply_rekeys(tracks: Map[Any], rekeys: dict[str, str]) -> None:
    for track_id, key in rekeys.items():
        _set_fields(tracks[track_id], {TRACK_ORDER: key})


def _insert_index(sequence: list[tuple[str, str]], after: str | None, *, at_end: bool) -> int:
    if after is None:
        return len(sequence) if at_end else 0
    return 1 + [track_id for track_id, _ in sequence].index(after)


def add_track(
    doc: Doc[Any],
    kind: TrackKind | str,
    name: str,
    *,
    track_id: str | None = None,
    after: str | None = None,
) -> str:
    """Add a track right after ``after``, or after the last track; returns its id."""
    values = {
        TRACK_KIND: _validated(ROOT_TRACKS, TRACK_KIND, kind).value,
        TRACK_NAME: _validated(ROOT_TRACKS, TRACK_NAME, name),
        TRACK_MUTED: False,
        TRACK_LOCKED: False,
    }
    with doc.transaction():
        tracks = _root_for_write(doc, ROOT_TRACKS)
        new_id = _new_id(tracks, track_id, "track")
        if after is not None:
            _entry(tracks, after, "track", UnknownTrackError)
        sequence = _track_sequence(tracks)
        order, rekeys = _place(sequence, _insert_index(sequence, after, at_end=True))
        _apply_rekeys(tracks, rekeys)
        tracks[new_id] = Map({**values, TRACK_ORDER: order})
    return new_id


def move_track(doc: Doc[Any], track_id: str, *, after: str | None) -> None:
    """Move a track right after ``after``, or to the top when ``after`` is None.

    Only ``order`` changes (other tracks' ``order`` too in the rare case their keys must be
    renumbered), so concurrent renames or flag changes survive a move."""
    with doc.transaction():
        tracks = _root_for_write(doc, ROOT_TRACKS)
        entry = _entry(tracks, track_id, "track", UnknownTrackError)
        if after is not None:
            _entry(tracks, after, "track", UnknownTrackError)
        if after == track_id:
            return
        sequence = [item for item in _track_sequence(tracks) if item[0] != track_id]
        current = entry.get(TRACK_ORDER)
        order, rekeys = _place(
            sequence,
            _insert_index(sequence, after, at_end=False),
            current if isinstance(current, str) else None,
        )
        _apply_rekeys(tracks, rekeys)
        _set_fields(entry, {TRACK_ORDER: order})


def rename_track(doc: Doc[Any], track_id: str, name: str) -> None:
    value = _validated(ROOT_TRACKS, TRACK_NAME, name)
    with doc.transaction():
        tracks = _root_for_write(doc, ROOT_TRACKS)
        _set_fields(_entry(tracks, track_id, "track", UnknownTrackError), {TRACK_NAME: value})


def set_track_flags(
    doc: Doc[Any], track_id: str, *, muted: bool | None = None, locked: bool | None = None
) -> None:
    """Set ``muted`` and/or ``locked``; a flag left as None is not touched."""
    values = {
        name: _validated(ROOT_TRACKS, name, value)
        for name, value in ((TRACK_MUTED, muted), (TRACK_LOCKED, locked))
        if value is not None
    }
    with doc.transaction():
        tracks = _root_for_write(doc, ROOT_TRACKS)
        _set_fields(_entry(tracks, track_id, "track", UnknownTrackError), values)


def delete_track(doc: Doc[Any], track_id: str) -> None:
    """Delete a track and every clip on it (clips in any shape, if their ``track`` matches)."""
    _validated_id(track_id, "track id")
    with doc.transaction():
        tracks = _root_for_write(doc, ROOT_TRACKS)
        clips = _root_for_write(doc, ROOT_CLIPS)
        if track_id not in tracks:
            raise UnknownTrackError(f"unknown track {track_id!r}")
        for clip_id in _clips_referencing(clips, CLIP_TRACK, track_id):
            del clips[clip_id]
        del tracks[track_id]


def _clips_referencing(clips: Map[Any], field: str, target: str) -> list[str]:
    found = []
    for clip_id in clips.keys():
        entry = clips[clip_id]
        if isinstance(entry, Map | dict) and entry.get(field) == target:
            found.append(clip_id)
    return sorted(found)


# --- Writers: assets -------------------------------------------------------------------------


def add_asset(
    doc: Doc[Any],
    kind: AssetKind | str,
    name: str,
    uri: str,
    *,
    duration_ms: int | None = None,
    origin: str = DEFAULT_ORIGIN,
    asset_id: str | None = None,
) -> str:
    """Register a media asset (an upload or a generated file); returns its id."""
    values = {
        ASSET_KIND: _validated(ROOT_ASSETS, ASSET_KIND, kind).value,
        ASSET_NAME: _validated(ROOT_ASSETS, ASSET_NAME, name),
        ASSET_URI: _validated(ROOT_ASSETS, ASSET_URI, uri),
        ASSET_ORIGIN: _validated(ROOT_ASSETS, ASSET_ORIGIN, origin),
    }
    if duration_ms is not None:
        values[ASSET_DURATION_MS] = _validated(ROOT_ASSETS, ASSET_DURATION_MS, duration_ms)
    with doc.transaction():
        assets = _root_for_write(doc, ROOT_ASSETS)
        new_id = _new_id(assets, asset_id, "asset")
        assets[new_id] = Map(values)
    return new_id


def delete_asset(doc: Doc[Any], asset_id: str, *, cascade: bool = False) -> None:
    """Delete an asset and clear the project thumbnail if it was this asset.

    Refuses (``AssetInUseError``) while clips use the asset, unless ``cascade`` is set, in which
    case those clips are deleted as well."""
    _validated_id(asset_id, "asset id")
    with doc.transaction():
        # Every check before the first write: a refused edit must leave nothing behind.
        assets = _root_for_write(doc, ROOT_ASSETS)
        clips = _root_for_write(doc, ROOT_CLIPS)
        project = _root_for_write(doc, ROOT_PROJECT)
        if asset_id not in assets:
            raise UnknownAssetError(f"unknown asset {asset_id!r}")
        users = _clips_referencing(clips, CLIP_ASSET, asset_id)
        if users and not cascade:
            shown = ", ".join(repr(clip_id) for clip_id in users[:5])
            more = f" and {len(users) - 5} more" if len(users) > 5 else ""
            raise AssetInUseError(f"asset {asset_id!r} is used by clip(s) {shown}{more}")
        for clip_id in users:
            del clips[clip_id]
        if project.get(PROJECT_THUMBNAIL_ASSET) == asset_id:
            del project[PROJECT_THUMBNAIL_ASSET]
        del assets[asset_id]


# --- Writers: clips --------------------------------------------------------------------------


def add_clip(
    doc: Doc[Any],
    track_id: str,
    kind: ClipKind | str,
    *,
    start_ms: int,
    duration_ms: int,
    asset: str | None = None,
    source_in_ms: int = 0,
    volume: float = DEFAULT_VOLUME,
    text: str | None = None,
    clip_id: str | None = None,
) -> str:
    """Place a clip on a track; returns its id. ``asset`` must exist when given."""
    values = {
        CLIP_TRACK: _validated_id(track_id, "track id"),
        CLIP_KIND: _validated(ROOT_CLIPS, CLIP_KIND, kind).value,
        CLIP_START_MS: _validated(ROOT_CLIPS, CLIP_START_MS, start_ms),
        CLIP_DURATION_MS: _validated(ROOT_CLIPS, CLIP_DURATION_MS, duration_ms),
        CLIP_SOURCE_IN_MS: _validated(ROOT_CLIPS, CLIP_SOURCE_IN_MS, source_in_ms),
        CLIP_VOLUME: _validated(ROOT_CLIPS, CLIP_VOLUME, volume),
    }
    if text is not None:
        values[CLIP_TEXT] = _validated(ROOT_CLIPS, CLIP_TEXT, text)
    with doc.transaction():
        _entry(_root_for_write(doc, ROOT_TRACKS), track_id, "track", UnknownTrackError)
        if asset is not None:
            _entry(_root_for_write(doc, ROOT_ASSETS), asset, "asset", UnknownAssetError)
            values[CLIP_ASSET] = asset
        clips = _root_for_write(doc, ROOT_CLIPS)
        new_id = _new_id(clips, clip_id, "clip")
        clips[new_id] = Map(values)
    return new_id


def _edit_clip(doc: Doc[Any], clip_id: str, values: Mapping[str, Any]) -> None:
    with doc.transaction():
        clips = _root_for_write(doc, ROOT_CLIPS)
        _set_fields(_entry(clips, clip_id, "clip", UnknownClipError), values)


def move_clip(doc: Doc[Any], clip_id: str, *, start_ms: int, track_id: str | None = None) -> None:
    """Move a clip in time and optionally to another track (changes only those fields)."""
    values: dict[str, Any] = {CLIP_START_MS: _validated(ROOT_CLIPS, CLIP_START_MS, start_ms)}
    with doc.transaction():
        if track_id is not None:
            _entry(_root_for_write(doc, ROOT_TRACKS), track_id, "track", UnknownTrackError)
            values[CLIP_TRACK] = track_id
        _edit_clip(doc, clip_id, values)


def trim_clip(
    doc: Doc[Any],
    clip_id: str,
    *,
    start_ms: int | None = None,
    duration_ms: int | None = None,
    source_in_ms: int | None = None,
) -> None:
    """Change any of the clip's timing fields; fields left as None are not touched."""
    values = {
        name: _validated(ROOT_CLIPS, name, value)
        for name, value in (
            (CLIP_START_MS, start_ms),
            (CLIP_DURATION_MS, duration_ms),
            (CLIP_SOURCE_IN_MS, source_in_ms),
        )
        if value is not None
    }
    _edit_clip(doc, clip_id, values)


def set_clip_text(doc: Doc[Any], clip_id: str, text: str | None) -> None:
    """Set the text of a subtitle/title clip; None removes it."""
    value = None if text is None else _validated(ROOT_CLIPS, CLIP_TEXT, text)
    _edit_clip(doc, clip_id, {CLIP_TEXT: value})


def set_clip_volume(doc: Doc[Any], clip_id: str, volume: float) -> None:
    _edit_clip(doc, clip_id, {CLIP_VOLUME: _validated(ROOT_CLIPS, CLIP_VOLUME, volume)})


def delete_clip(doc: Doc[Any], clip_id: str) -> None:
    """Delete a clip, whatever shape its entry has."""
    _validated_id(clip_id, "clip id")
    with doc.transaction():
        clips = _root_for_write(doc, ROOT_CLIPS)
        if clip_id not in clips:
            raise UnknownClipError(f"unknown clip {clip_id!r}")
        del clips[clip_id]

"""Typed model of a project's timeline, stored in one Yjs document (pure, no I/O).

Four root maps, each flat and keyed by id, so that a move or trim is a change of one field of
one ``Y.Map`` and concurrent edits of different fields of the same entity both survive::

    project  title, fps, width, height, thumbnail_asset?
    tracks   id -> Y.Map{kind, name, order, muted, locked}
    clips    id -> Y.Map{track, kind, asset?, start_ms, duration_ms, source_in_ms, volume, text?}
    assets   id -> Y.Map{kind, name, uri, duration_ms?, origin}

Times are integer milliseconds. Yjs stores JS numbers, so an integer comes back from pycrdt as
a float (``1000.0``); the reader turns integral floats back into ints. Track ``order`` is a
fractional index key (``crdt.fractional_index``): tracks sort by ``(order, id)``, so two
replicas that append a track at once get a stable, converged order.

``read_timeline`` is the tolerant side: browsers can write anything into the document, and the
reader reports every deviation as a ``Problem`` instead of raising. The writers are the strict
side: they validate their arguments, raise ``TimelineError`` subclasses, and each runs in one
transaction, so one call is one update on the wire.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from pycrdt import Doc, Map

from crdt.errors import CrdtError
from crdt.fractional_index import is_valid_key, key_between, spread_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# --- Document layout -------------------------------------------------------------------------

ROOT_PROJECT: Final = "project"
ROOT_TRACKS: Final = "tracks"
ROOT_CLIPS: Final = "clips"
ROOT_ASSETS: Final = "assets"
ROOTS: Final = (ROOT_PROJECT, ROOT_TRACKS, ROOT_CLIPS, ROOT_ASSETS)

PROJECT_TITLE: Final = "title"
PROJECT_FPS: Final = "fps"
PROJECT_WIDTH: Final = "width"
PROJECT_HEIGHT: Final = "height"
PROJECT_THUMBNAIL_ASSET: Final = "thumbnail_asset"

TRACK_KIND: Final = "kind"
TRACK_NAME: Final = "name"
TRACK_ORDER: Final = "order"
TRACK_MUTED: Final = "muted"
TRACK_LOCKED: Final = "locked"

CLIP_TRACK: Final = "track"
CLIP_KIND: Final = "kind"
CLIP_ASSET: Final = "asset"
CLIP_START_MS: Final = "start_ms"
CLIP_DURATION_MS: Final = "duration_ms"
CLIP_SOURCE_IN_MS: Final = "source_in_ms"
CLIP_VOLUME: Final = "volume"
CLIP_TEXT: Final = "text"

ASSET_KIND: Final = "kind"
ASSET_NAME: Final = "name"
ASSET_URI: Final = "uri"
ASSET_DURATION_MS: Final = "duration_ms"
ASSET_ORIGIN: Final = "origin"

# Largest integer a JS number holds exactly; anything above cannot round-trip through a browser.
MAX_SAFE_INTEGER: Final = 2**53 - 1

DEFAULT_FPS: Final = 30.0
DEFAULT_WIDTH: Final = 1920
DEFAULT_HEIGHT: Final = 1080
DEFAULT_VOLUME: Final = 1.0
DEFAULT_ORIGIN: Final = "upload"


class TrackKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    SUBTITLE = "subtitle"
    OVERLAY = "overlay"


class ClipKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    SUBTITLE = "subtitle"
    TITLE = "title"


class AssetKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"


# --- Errors ----------------------------------------------------------------------------------


class TimelineError(CrdtError, ValueError):
    """A timeline edit was refused; the document is unchanged."""


class InvalidValueError(TimelineError):
    """An argument has the wrong type or is out of range (e.g. a negative duration)."""


class DuplicateIdError(TimelineError):
    """An explicit id for a new track, clip or asset is already taken."""


class UnknownTrackError(TimelineError):
    """No track with this id."""


class UnknownClipError(TimelineError):
    """No clip with this id."""


class UnknownAssetError(TimelineError):
    """No asset with this id."""


class AssetInUseError(TimelineError):
    """The asset is still used by clips (pass ``cascade=True`` to delete them too)."""


class MalformedDocumentError(TimelineError):
    """The edit targets content a client wrote in the wrong shape (e.g. a clip that is a string,
    or a root that is a ``Y.Array``). Such entries can still be deleted."""


# --- Read model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One deviation from the schema. ``path`` is ``root[/id[/field]]``."""

    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    title: str = ""
    fps: float = DEFAULT_FPS
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    thumbnail_asset: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "thumbnail_asset": self.thumbnail_asset,
        }


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    kind: TrackKind
    name: str
    order: str
    muted: bool
    locked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "order": self.order,
            "muted": self.muted,
            "locked": self.locked,
        }


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    track: str
    kind: ClipKind
    start_ms: int
    duration_ms: int
    asset: str | None
    source_in_ms: int
    volume: float
    text: str | None

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "track": self.track,
            "kind": self.kind.value,
            "asset": self.asset,
            "start_ms": self.start_ms,
            "duration_ms": self.duration_ms,
            "source_in_ms": self.source_in_ms,
            "volume": self.volume,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    kind: AssetKind
    name: str
    uri: str
    duration_ms: int | None
    origin: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "uri": self.uri,
            "duration_ms": self.duration_ms,
            "origin": self.origin,
        }


@dataclass(frozen=True, slots=True)
class Timeline:
    """A consistent snapshot: every clip's track exists, every asset reference resolves.

    ``tracks`` are ordered by ``(order, id)``, ``clips`` by (track position, ``start_ms``,
    ``id``), ``assets`` and ``problems`` by id/path, so converged documents compare equal.
    """

    project: ProjectInfo
    tracks: tuple[Track, ...]
    clips: tuple[Clip, ...]
    assets: tuple[Asset, ...]
    problems: tuple[Problem, ...]

    def track(self, track_id: str) -> Track | None:
        return next((t for t in self.tracks if t.id == track_id), None)

    def clip(self, clip_id: str) -> Clip | None:
        return next((c for c in self.clips if c.id == clip_id), None)

    def asset(self, asset_id: str) -> Asset | None:
        return next((a for a in self.assets if a.id == asset_id), None)

    def clips_on(self, track_id: str) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.track == track_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project.to_json(),
            "tracks": [t.to_json() for t in self.tracks],
            "clips": [c.to_json() for c in self.clips],
            "assets": [a.to_json() for a in self.assets],
            "problems": [p.to_json() for p in self.problems],
        }


# --- Field validation, shared by the reader and the writers ---------------------------------

# Returned by a check for a value it rejects (``None`` is a legitimate value for some fields).
_INVALID: Final[Any] = object()


def _as_int(value: Any) -> int | None:
    """An int, or an integral float as JS numbers arrive; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if abs(number) <= MAX_SAFE_INTEGER else None


def _int_at_least(minimum: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = _as_int(value)
        return number if number is not None and number >= minimum else _INVALID

    return check


def _number(*, minimum: float, exclusive: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _INVALID
        number = float(value)
        if not math.isfinite(number) or number < minimum or (exclusive and number == minimum):
            return _INVALID
        return number

    return check


def _string(*, non_empty: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or (non_empty and not value):
            return _INVALID
        return value

    return check


def _boolean(value: Any) -> Any:
    return value if isinstance(value, bool) else _INVALID


def _member_of(enum: type[StrEnum]) -> Callable[[Any], Any]:
    values = {member.value: member for member in enum}

    def check(value: Any) -> Any:
        return values.get(value, _INVALID) if isinstance(value, str) else _INVALID

    return check


@dataclass(frozen=True, slots=True)
class _Field:
    """How one stored field is validated, and what the reader does when it is bad.

    ``required``: a bad or missing value makes the reader skip the whole entity.
    Otherwise a missing value (or ``None`` when ``nullable``) silently means ``default``, and a
    bad value is replaced by ``default`` and reported.
    """

    name: str
    expected: str
    check: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    nullable: bool = False


_ID = _string(non_empty=True)

_PROJECT_FIELDS: Final = (
    _Field(PROJECT_TITLE, "a string", _string(non_empty=False), ""),
    _Field(PROJECT_FPS, "a number > 0", _number(minimum=0, exclusive=True), DEFAULT_FPS),
    _Field(PROJECT_WIDTH, "an integer >= 1", _int_at_least(1), DEFAULT_WIDTH),
    _Field(PROJECT_HEIGHT, "an integer >= 1", _int_at_least(1), DEFAULT_HEIGHT),
    _Field(PROJECT_THUMBNAIL_ASSET, "a non-empty string", _ID, nullable=True),
)
_TRACK_FIELDS: Final = (
    _Field(TRACK_KIND, "one of " + ", ".join(TrackKind), _member_of(TrackKind), required=True),
    _Field(TRACK_NAME, "a string", _string(non_empty=False), ""),
    _Field(TRACK_ORDER, "a string", _string(non_empty=False), ""),
    _Field(TRACK_MUTED, "a boolean", _boolean, False),
    _Field(TRACK_LOCKED, "a boolean", _boolean, False),
)
_CLIP_FIELDS: Final = (
    _Field(CLIP_TRACK, "a non-empty string", _ID, required=True),
    _Field(CLIP_KIND, "one of " + ", ".join(ClipKind), _member_of(ClipKind), required=True),
    _Field(CLIP_START_MS, "an integer >= 0", _int_at_least(0), required=True),
    _Field(CLIP_DURATION_MS, "an integer >= 1", _int_at_least(1), required=True),
    _Field(CLIP_ASSET, "a non-empty string", _ID, nullable=True),
    _Field(CLIP_SOURCE_IN_MS, "an integer >= 0", _int_at_least(0), 0),
    _Field(CLIP_VOLUME, "a number >= 0", _number(minimum=0, exclusive=False), DEFAULT_VOLUME),
    _Field(CLIP_TEXT, "a string", _string(non_empty=False), nullable=True),
)
_ASSET_FIELDS: Final = (
    _Field(ASSET_KIND, "one of " + ", ".join(AssetKind), _member_of(AssetKind), required=True),
    _Field(ASSET_NAME, "a string", _string(non_empty=False), ""),
    _Field(ASSET_URI, "a non-empty string", _ID, required=True),
    _Field(ASSET_DURATION_MS, "an integer >= 1", _int_at_least(1), nullable=True),
    _Field(ASSET_ORIGIN, "a non-empty string", _ID, DEFAULT_ORIGIN),
)
_FIELDS_BY_NAME: Final = {
    ROOT_PROJECT: {f.name: f for f in _PROJECT_FIELDS},
    ROOT_TRACKS: {f.name: f for f in _TRACK_FIELDS},
    ROOT_CLIPS: {f.name: f for f in _CLIP_FIELDS},
    ROOT_ASSETS: {f.name: f for f in _ASSET_FIELDS},
}


def _describe(value: Any) -> str:
    """Short, bounded description of a stored value for a problem message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A client can store megabytes in a field; keep problem reports small.
        return repr(value) if len(value) <= 40 else f"{value[:40]!r}..."
    if isinstance(value, dict):
        return "a plain object"
    if isinstance(value, list):
        return "a plain array"
    if type(value).__module__.startswith("pycrdt"):
        return f"a Y.{type(value).__name__}"
    return f"a {type(value).__name__}"


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

"""The timeline document's schema: its layout, the typed read model, the errors, and the
field rules that the reader and the writers share (pure, no I/O).

Four root maps, each flat and keyed by id, so that a move or trim is a change of one field of
one ``Y.Map`` and concurrent edits of different fields of the same entity both survive::

    project  title, fps, width, height, thumbnail_asset?
    tracks   id -> Y.Map{kind, name, order, muted, locked}
    clips    id -> Y.Map{track, kind, asset?, start_ms, duration_ms, source_in_ms, volume, text?}
    assets   id -> Y.Map{kind, name, uri, duration_ms?, origin}

Times are integer milliseconds. Yjs stores JS numbers, so an integer comes back from pycrdt as
a float (``1000.0``); the field checks accept integral floats as integers. Track ``order`` is a
fractional index key (``crdt.fractional_index``): tracks sort by ``(order, id)``, so two
replicas that append a track at once get a stable, converged order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from crdt.errors import CrdtError

if TYPE_CHECKING:
    from collections.abc import Callable

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



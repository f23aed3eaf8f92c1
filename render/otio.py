"""OpenTimelineIO interchange: export a timeline for desktop editors, import one back.

Export maps each track to an OTIO track (audio tracks to ``Audio``, the others to ``Video``),
fills the space between clips with gaps, and gives media clips an ``ExternalReference`` to
their asset's URI; subtitle and title clips get a ``GeneratorReference`` of kind
``flowai.text`` holding their text. Times are in the project's frame rate. What OTIO has no
field for (ids, track kinds and flags, volumes, assets no clip uses) travels in
``metadata["flowai"]``, so a file exported here imports back to the same timeline; an editor
that keeps metadata keeps it too. Clips that overlap on one track (which OTIO tracks cannot
hold) are exported on extra tracks marked as lanes of the same track and merged on import.

Import accepts files from other editors as well: tracks, clips and gaps are read, external
references become assets (one per distinct URL), and anything else (transitions, nested
stacks, effects, markers) is skipped and reported. ``parse_otio`` is pure; ``write_timeline``
writes the result into a document through the ``crdt.timeline`` writers.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

import opentimelineio as otio  # type: ignore[import-untyped]
from pycrdt import Doc

from crdt import timeline as tl
from crdt.timeline import AssetKind, ClipKind, Timeline, TrackKind

__all__ = [
    "ImportedTimeline",
    "OtioImportError",
    "export_otio",
    "parse_otio",
    "write_timeline",
]

META: Final = "flowai"
TEXT_GENERATOR: Final = "flowai.text"
TRACKS_MAX: Final = 200
CLIPS_MAX: Final = 20_000
ASSETS_MAX: Final = 20_000
_IMAGE_EXTENSIONS: Final = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif",
                                      ".tiff", ".svg"})  # fmt: skip
_AUDIO_EXTENSIONS: Final = frozenset({".mp3", ".wav", ".aac", ".m4a", ".flac", ".ogg", ".opus",
                                      ".aif", ".aiff"})  # fmt: skip
_ID: Final = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


class OtioImportError(ValueError):
    """The text is not an OpenTimelineIO timeline we can read."""


# --- Export -----------------------------------------------------------------------------------


def _rt(ms: int, fps: float) -> Any:
    return otio.opentime.RationalTime(ms * fps / 1000, fps)


def _range(start_ms: int, duration_ms: int, fps: float) -> Any:
    return otio.opentime.TimeRange(_rt(start_ms, fps), _rt(duration_ms, fps))


def _lanes(clips: tuple[tl.Clip, ...]) -> list[list[tl.Clip]]:
    """Clips of one track split into lanes without overlaps (usually just one)."""
    lanes: list[list[tl.Clip]] = []
    for clip in clips:  # sorted by start
        for lane in lanes:
            if lane[-1].end_ms <= clip.start_ms:
                lane.append(clip)
                break
        else:
            lanes.append([clip])
    return lanes or [[]]


def _reference(clip: tl.Clip, timeline: Timeline, fps: float) -> Any:
    if clip.kind in (ClipKind.SUBTITLE, ClipKind.TITLE):
        return otio.schema.GeneratorReference(
            generator_kind=TEXT_GENERATOR, parameters={"text": clip.text or ""}
        )
    asset = timeline.asset(clip.asset) if clip.asset is not None else None
    if asset is None:
        return otio.schema.MissingReference()
    available = None if asset.duration_ms is None else _range(0, asset.duration_ms, fps)
    return otio.schema.ExternalReference(target_url=asset.uri, available_range=available)


def _clip_name(clip: tl.Clip, timeline: Timeline) -> str:
    asset = timeline.asset(clip.asset) if clip.asset is not None else None
    if asset is not None and asset.name:
        return asset.name
    return (clip.text or clip.kind.value)[:80]


def export_otio(timeline: Timeline) -> str:
    """The timeline as an ``.otio`` JSON document."""
    fps = timeline.project.fps
    out = otio.schema.Timeline(
        name=timeline.project.title, global_start_time=otio.opentime.RationalTime(0, fps)
    )
    out.metadata[META] = {
        "version": 1,
        "project": timeline.project.to_json(),
        "assets": [asset.to_json() for asset in timeline.assets],
    }
    for track in timeline.tracks:
        audio = track.kind is TrackKind.AUDIO
        kind = otio.schema.TrackKind.Audio if audio else otio.schema.TrackKind.Video
        for lane_number, lane in enumerate(_lanes(timeline.clips_on(track.id))):
            name = track.name if lane_number == 0 else f"{track.name} ({lane_number + 1})"
            out_track = otio.schema.Track(name=name, kind=kind)
            out_track.metadata[META] = {
                "id": track.id,
                "kind": track.kind.value,
                "muted": track.muted,
                "locked": track.locked,
                "lane": lane_number,
            }
            cursor = 0
            for clip in lane:
                if clip.start_ms > cursor:
                    gap = otio.opentime.TimeRange(duration=_rt(clip.start_ms - cursor, fps))
                    out_track.append(otio.schema.Gap(source_range=gap))
                out_clip = otio.schema.Clip(
                    name=_clip_name(clip, timeline),
                    media_reference=_reference(clip, timeline, fps),
                    source_range=_range(clip.source_in_ms, clip.duration_ms, fps),
                )
                out_clip.metadata[META] = {
                    "id": clip.id,
                    "kind": clip.kind.value,
                    "asset": clip.asset,
                    "volume": clip.volume,
                    "text": clip.text,
                }
                out_track.append(out_clip)
                cursor = clip.end_ms
            out.tracks.append(out_track)
    text: str = otio.adapters.write_to_string(out, "otio_json")
    return text


# --- Import -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportedTrack:
    id: str
    kind: TrackKind
    name: str
    muted: bool = False
    locked: bool = False


@dataclass(slots=True)
class ImportedAsset:
    id: str
    kind: AssetKind
    name: str
    uri: str
    duration_ms: int | None
    origin: str


@dataclass(slots=True)
class ImportedClip:
    id: str
    track: str
    kind: ClipKind
    start_ms: int
    duration_ms: int
    source_in_ms: int
    asset: str | None
    volume: float
    text: str | None


@dataclass(slots=True)
class ImportedTimeline:
    title: str
    fps: float
    width: int
    height: int
    thumbnail_asset: str | None = None
    tracks: list[ImportedTrack] = field(default_factory=list)
    assets: list[ImportedAsset] = field(default_factory=list)
    clips: list[ImportedClip] = field(default_factory=list)
    # What the file held that a FlowAI timeline cannot (transitions, effects ...).
    skipped: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """OTIO's metadata containers as plain JSON values."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return None


def _meta(item: Any) -> dict[str, Any]:
    value = _plain(item.metadata.get(META)) if META in item.metadata else None
    return value if isinstance(value, dict) else {}


def _ms(time: Any) -> int:
    return round(float(time.to_seconds()) * 1000)


def _text(value: Any, default: str, limit: int = 10_000) -> str:
    return value[:limit] if isinstance(value, str) else default


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _enum(enum: Any, value: Any, default: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        return default


class _Reader:
    def __init__(self, source: Any) -> None:
        self.source = source
        meta = _meta(source)
        project = meta.get("project") if isinstance(meta.get("project"), dict) else {}
        assert isinstance(project, dict)
        fps = project.get("fps")
        rate = source.global_start_time.rate if source.global_start_time is not None else None
        self.out = ImportedTimeline(
            title=_text(project.get("title"), source.name or "Imported timeline", 200),
            fps=float(fps) if isinstance(fps, int | float) and fps > 0 else float(rate or 30),
            width=_int(project.get("width")) or tl.DEFAULT_WIDTH,
            height=_int(project.get("height")) or tl.DEFAULT_HEIGHT,
            thumbnail_asset=project.get("thumbnail_asset")
            if isinstance(project.get("thumbnail_asset"), str)
            else None,
        )
        self.used_ids: set[str] = set()
        self.asset_ids: set[str] = set()
        self.assets_by_uri: dict[str, str] = {}
        self.track_ids: dict[str, ImportedTrack] = {}
        for raw in meta.get("assets") or []:
            self.add_meta_asset(raw)

    def new_id(self, wanted: Any, prefix: str) -> str:
        if isinstance(wanted, str) and _ID.match(wanted) and wanted not in self.used_ids:
            self.used_ids.add(wanted)
            return wanted
        n = len(self.used_ids)
        while f"{prefix}-{n}" in self.used_ids:
            n += 1
        self.used_ids.add(f"{prefix}-{n}")
        return f"{prefix}-{n}"

    def add_meta_asset(self, raw: Any) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("uri"), str) or not raw["uri"]:
            return
        duration = _int(raw.get("duration_ms"))
        asset = ImportedAsset(
            id=self.new_id(raw.get("id"), "asset"),
            kind=_enum(AssetKind, raw.get("kind"), AssetKind.VIDEO),
            name=_text(raw.get("name"), ""),
            uri=raw["uri"],
            duration_ms=duration if duration is not None and duration > 0 else None,
            origin=_text(raw.get("origin"), tl.DEFAULT_ORIGIN, 200) or tl.DEFAULT_ORIGIN,
        )
        self.out.assets.append(asset)
        self.asset_ids.add(asset.id)
        self.assets_by_uri.setdefault(asset.uri, asset.id)

    def asset_for(self, reference: Any, track_kind: TrackKind, name: str) -> str | None:
        uri = getattr(reference, "target_url", None)
        if not isinstance(uri, str) or not uri:
            return None
        if uri in self.assets_by_uri:
            return self.assets_by_uri[uri]
        suffix = PurePosixPath(uri.split("?")[0]).suffix.lower()
        if track_kind is TrackKind.AUDIO or suffix in _AUDIO_EXTENSIONS:
            kind = AssetKind.AUDIO
        elif suffix in _IMAGE_EXTENSIONS:
            kind = AssetKind.IMAGE
        else:
            kind = AssetKind.VIDEO
        available = getattr(reference, "available_range", None)
        duration = _ms(available.duration) if available is not None else None
        digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
        asset = ImportedAsset(
            id=self.new_id(f"asset-{digest}", "asset"),
            kind=kind,
            name=name[:200],
            uri=uri,
            duration_ms=duration if duration else None,
            origin="import:otio",
        )
        self.out.assets.append(asset)
        self.asset_ids.add(asset.id)
        self.assets_by_uri[uri] = asset.id
        return asset.id

    def track(self, source_track: Any, index: int) -> ImportedTrack:
        meta = _meta(source_track)
        wanted = meta.get("id")
        if isinstance(wanted, str) and wanted in self.track_ids:
            return self.track_ids[wanted]  # another lane of a track already read
        default = TrackKind.AUDIO if source_track.kind == "Audio" else TrackKind.VIDEO
        track = ImportedTrack(
            id=self.new_id(wanted, "track"),
            kind=_enum(TrackKind, meta.get("kind"), default),
            name=(source_track.name or f"Track {index + 1}")[:200],
            muted=meta.get("muted") is True,
            locked=meta.get("locked") is True,
        )
        if isinstance(wanted, str):
            self.track_ids[wanted] = track
        self.out.tracks.append(track)
        return track

    def clip(self, item: Any, track: ImportedTrack, start_ms: int) -> None:
        meta = _meta(item)
        reference = item.media_reference
        source_range = item.source_range or item.trimmed_range()
        text = meta.get("text") if isinstance(meta.get("text"), str) else None
        asset_id = None
        if getattr(reference, "generator_kind", None) == TEXT_GENERATOR:
            text = _text(_plain(reference.parameters).get("text"), "")
            default = ClipKind.SUBTITLE if track.kind is TrackKind.SUBTITLE else ClipKind.TITLE
            kind = _enum(ClipKind, meta.get("kind"), default)
        else:
            wanted = meta.get("asset")
            asset_id = wanted if isinstance(wanted, str) and wanted in self.asset_ids else None
            if asset_id is None:
                asset_id = self.asset_for(reference, track.kind, item.name or "")
            if asset_id is None:
                self.out.skipped.append(f"clip {item.name or '?'!r}: no media reference")
                return
            asset = next(a for a in self.out.assets if a.id == asset_id)
            by_asset = {AssetKind.IMAGE: ClipKind.IMAGE, AssetKind.AUDIO: ClipKind.AUDIO}
            kind = _enum(ClipKind, meta.get("kind"), by_asset.get(asset.kind, ClipKind.VIDEO))
        volume = meta.get("volume")
        self.out.clips.append(
            ImportedClip(
                id=self.new_id(meta.get("id"), "clip"),
                track=track.id,
                kind=kind,
                start_ms=start_ms,
                duration_ms=max(1, _ms(source_range.duration)),
                source_in_ms=max(0, _ms(source_range.start_time)),
                asset=asset_id,
                volume=float(volume) if isinstance(volume, int | float) and volume >= 0 else 1.0,
                text=text,
            )
        )

    def read(self) -> ImportedTimeline:
        for index, source_track in enumerate(self.source.tracks):
            if not isinstance(source_track, otio.schema.Track):
                self.out.skipped.append(f"{type(source_track).__name__} {source_track.name!r}")
                continue
            track = self.track(source_track, index)
            for position, item in enumerate(source_track):
                if isinstance(item, otio.schema.Gap):
                    continue
                if not isinstance(item, otio.schema.Clip):
                    self.out.skipped.append(f"{type(item).__name__} on track {track.name!r}")
                    continue
                start = _ms(source_track.range_of_child_at_index(position).start_time)
                self.clip(item, track, max(0, start))
        return self.out


def parse_otio(text: str) -> ImportedTimeline:
    """Read an ``.otio`` JSON document; raises ``OtioImportError``."""
    try:
        json.loads(text)
        source = otio.adapters.read_from_string(text, "otio_json")
    except (ValueError, KeyError, TypeError, RuntimeError, otio.exceptions.OTIOError) as exc:
        # The deserializer reports a malformed document with any of these.
        raise OtioImportError(f"not an OpenTimelineIO JSON document: {exc}"[:300]) from exc
    if isinstance(source, otio.schema.SerializableCollection):
        source = next((t for t in source if isinstance(t, otio.schema.Timeline)), None)
    if not isinstance(source, otio.schema.Timeline):
        raise OtioImportError("the document holds no timeline")
    imported = _Reader(source).read()
    if len(imported.tracks) > TRACKS_MAX:
        raise OtioImportError(f"{len(imported.tracks)} tracks; at most {TRACKS_MAX}")
    if len(imported.clips) > CLIPS_MAX:
        raise OtioImportError(f"{len(imported.clips)} clips; at most {CLIPS_MAX}")
    if len(imported.assets) > ASSETS_MAX:
        raise OtioImportError(f"{len(imported.assets)} media references; at most {ASSETS_MAX}")
    if not (math.isfinite(imported.fps) and 0 < imported.fps <= 240):
        raise OtioImportError(f"unsupported frame rate {imported.fps}")
    return imported


def write_timeline(doc: Doc[Any], imported: ImportedTimeline) -> None:
    """Write an imported timeline into an empty document, in one transaction."""
    with doc.transaction():
        tl.init_project(doc, imported.title, imported.fps, imported.width, imported.height)
        for track in imported.tracks:
            tl.add_track(doc, track.kind, track.name, track_id=track.id)
            if track.muted or track.locked:
                tl.set_track_flags(doc, track.id, muted=track.muted, locked=track.locked)
        for asset in imported.assets:
            tl.add_asset(
                doc,
                asset.kind,
                asset.name,
                asset.uri,
                duration_ms=asset.duration_ms,
                origin=asset.origin,
                asset_id=asset.id,
            )
        for clip in imported.clips:
            tl.add_clip(
                doc,
                clip.track,
                clip.kind,
                start_ms=clip.start_ms,
                duration_ms=clip.duration_ms,
                asset=clip.asset,
                source_in_ms=clip.source_in_ms,
                volume=clip.volume,
                text=clip.text,
                clip_id=clip.id,
            )
        assets = {asset.id for asset in imported.assets}
        if imported.thumbnail_asset in assets:
            tl.set_project_fields(doc, thumbnail_asset=imported.thumbnail_asset)

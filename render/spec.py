"""The render spec: what a render draws and plays, and what the user asked for.

``RenderOptions`` is the request; ``RenderSpec`` is what every backend renders as is, with its
JSON form (``to_json``/``from_json``: the Remotion composition's input props, and how a job
keeps its spec). ``render.spec_build.build_spec`` derives a spec from a timeline and checks
it first.

What the spec means (both backends render exactly this):
- The output shows ``[range_start_ms, range_start_ms + duration_ms)`` of the timeline at
  ``width`` x ``height`` and ``fps``. Every time in the spec is relative to the output's start.
- ``visuals`` are drawn bottom to top in list order: tracks later in the track order cover
  earlier ones (as V2 covers V1 in a desktop editor), each clip scaled to fit the frame and
  centred. Where nothing is drawn the frame is black.
- ``audio`` is mixed with each item's volume; video clips bring their own sound when the
  source has any. A muted track contributes no sound (its pictures still show). Where
  nothing plays there is silence.
- ``subtitles`` (one entry per subtitle track) are burned into the picture or muxed as
  subtitle streams (``subtitle_mode``); ``titles`` (title clips on video or overlay tracks) are
  always burned in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from crdt.timeline import ClipKind

__all__ = [
    "AudioItem",
    "Cue",
    "OutputFormat",
    "RenderOptions",
    "RenderSpec",
    "SubtitleMode",
    "SubtitleTrack",
    "VisualItem",
]


class OutputFormat(StrEnum):
    MP4 = "mp4"  # H.264 + AAC, subtitle streams as mov_text
    WEBM = "webm"  # VP9 + Opus, subtitle streams as WebVTT

    @property
    def media_type(self) -> str:
        return f"video/{self.value}"


class SubtitleMode(StrEnum):
    BURN = "burn"  # drawn into the picture: visible in every player
    STREAM = "stream"  # one subtitle stream per track: players can switch them on and off
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What the user asked for. ``resolution``: ``project``, ``<height>p`` (keeps the
    project's aspect ratio) or ``<width>x<height>``. ``start_ms``/``end_ms`` select a range
    of the timeline; ``None`` means its start/end."""

    format: OutputFormat = OutputFormat.MP4
    resolution: str = "project"
    start_ms: int | None = None
    end_ms: int | None = None
    subtitles: SubtitleMode = SubtitleMode.BURN


@dataclass(frozen=True, slots=True)
class VisualItem:
    clip_id: str
    kind: ClipKind  # VIDEO or IMAGE
    asset_id: str
    uri: str
    start_ms: int
    duration_ms: int
    source_in_ms: int
    layer: int  # position of the clip's track; higher layers are drawn over lower ones

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True, slots=True)
class AudioItem:
    clip_id: str
    asset_id: str
    uri: str
    start_ms: int
    duration_ms: int
    source_in_ms: int
    volume: float
    # The sound of a video clip: the renderer skips it when the source has no audio stream.
    from_video: bool


@dataclass(frozen=True, slots=True)
class Cue:
    clip_id: str
    start_ms: int
    duration_ms: int
    text: str

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms


@dataclass(frozen=True, slots=True)
class SubtitleTrack:
    track_id: str
    name: str
    cues: tuple[Cue, ...]


@dataclass(frozen=True, slots=True)
class RenderSpec:
    width: int
    height: int
    fps: float
    duration_ms: int
    range_start_ms: int
    format: OutputFormat
    subtitle_mode: SubtitleMode
    title: str = ""
    visuals: tuple[VisualItem, ...] = ()
    audio: tuple[AudioItem, ...] = ()
    subtitles: tuple[SubtitleTrack, ...] = ()
    titles: tuple[Cue, ...] = ()
    # asset id -> uri of every asset the render reads.
    assets: dict[str, str] = field(default_factory=dict)

    @property
    def duration_in_frames(self) -> int:
        return max(1, round(self.duration_ms * self.fps / 1000))

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def with_uris(self, uris: dict[str, str]) -> RenderSpec:
        """The same spec reading each asset from ``uris[asset_id]`` (e.g. local files, or
        URLs a remote renderer can fetch)."""
        return replace(
            self,
            visuals=tuple(replace(v, uri=uris[v.asset_id]) for v in self.visuals),
            audio=tuple(replace(a, uri=uris[a.asset_id]) for a in self.audio),
            assets={asset_id: uris[asset_id] for asset_id in self.assets},
        )

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON: the input props of the Remotion composition."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "durationMs": self.duration_ms,
            "durationInFrames": self.duration_in_frames,
            "rangeStartMs": self.range_start_ms,
            "format": self.format.value,
            "subtitleMode": self.subtitle_mode.value,
            "title": self.title,
            "visuals": [
                {
                    "clipId": v.clip_id,
                    "kind": v.kind.value,
                    "assetId": v.asset_id,
                    "src": v.uri,
                    "startMs": v.start_ms,
                    "durationMs": v.duration_ms,
                    "sourceInMs": v.source_in_ms,
                    "layer": v.layer,
                }
                for v in self.visuals
            ],
            "audio": [
                {
                    "clipId": a.clip_id,
                    "assetId": a.asset_id,
                    "src": a.uri,
                    "startMs": a.start_ms,
                    "durationMs": a.duration_ms,
                    "sourceInMs": a.source_in_ms,
                    "volume": a.volume,
                    "fromVideo": a.from_video,
                }
                for a in self.audio
            ],
            "subtitles": [
                {"trackId": s.track_id, "name": s.name, "cues": [_cue_json(c) for c in s.cues]}
                for s in self.subtitles
            ],
            "titles": [_cue_json(c) for c in self.titles],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderSpec:
        """The spec back from ``to_json`` (a job keeps its spec as JSON); ``KeyError``,
        ``TypeError`` or ``ValueError`` when ``data`` is not one."""
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            fps=float(data["fps"]),
            duration_ms=int(data["durationMs"]),
            range_start_ms=int(data["rangeStartMs"]),
            format=OutputFormat(data["format"]),
            subtitle_mode=SubtitleMode(data["subtitleMode"]),
            title=str(data["title"]),
            visuals=tuple(
                VisualItem(
                    v["clipId"],
                    ClipKind(v["kind"]),
                    v["assetId"],
                    v["src"],
                    int(v["startMs"]),
                    int(v["durationMs"]),
                    int(v["sourceInMs"]),
                    int(v["layer"]),
                )
                for v in data["visuals"]
            ),
            audio=tuple(
                AudioItem(
                    a["clipId"],
                    a["assetId"],
                    a["src"],
                    int(a["startMs"]),
                    int(a["durationMs"]),
                    int(a["sourceInMs"]),
                    float(a["volume"]),
                    bool(a["fromVideo"]),
                )
                for a in data["audio"]
            ),
            subtitles=tuple(
                SubtitleTrack(s["trackId"], s["name"], tuple(_cue(c) for c in s["cues"]))
                for s in data["subtitles"]
            ),
            titles=tuple(_cue(c) for c in data["titles"]),
            assets={v["assetId"]: v["src"] for v in (*data["visuals"], *data["audio"])},
        )


def _cue(data: dict[str, Any]) -> Cue:
    return Cue(data["clipId"], int(data["startMs"]), int(data["durationMs"]), str(data["text"]))


def _cue_json(cue: Cue) -> dict[str, Any]:
    return {
        "clipId": cue.clip_id,
        "startMs": cue.start_ms,
        "durationMs": cue.duration_ms,
        "text": cue.text,
    }

"""Building the render spec from a timeline, checked first.

``build_spec(timeline, options)`` is pure. It either returns a ``RenderSpec`` that every
backend can render as is, or raises ``InvalidRender`` listing *every* problem it found, each
with a path into the document (``clips/<id>/asset``) or the request (``options/range``), so a
user can fix them all in one go instead of one render attempt per mistake. What a spec means
is described in ``render.spec``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from crdt.timeline import (
    AssetKind,
    Clip,
    ClipKind,
    Problem,
    Timeline,
    Track,
    TrackKind,
)
from render.errors import InvalidRender
from render.spec import (
    AudioItem,
    Cue,
    RenderOptions,
    RenderSpec,
    SubtitleMode,
    SubtitleTrack,
    VisualItem,
)

__all__ = ["build_spec", "parse_resolution"]

# Limits: a render is bounded in length, size and number of inputs, whatever the document holds.
DURATION_MS_MAX: Final = 4 * 60 * 60 * 1000
SIDE_MIN: Final = 16
SIDE_MAX: Final = 4096
FPS_MAX: Final = 120.0
VISUAL_ITEMS_MAX: Final = 400
AUDIO_ITEMS_MAX: Final = 400
CUES_MAX: Final = 20_000
CUE_CHARS_MAX: Final = 2_000

# Which clip kinds each track kind can hold.
_ALLOWED: Final[dict[TrackKind, frozenset[ClipKind]]] = {
    TrackKind.VIDEO: frozenset({ClipKind.VIDEO, ClipKind.IMAGE, ClipKind.TITLE}),
    TrackKind.OVERLAY: frozenset({ClipKind.VIDEO, ClipKind.IMAGE, ClipKind.TITLE}),
    TrackKind.AUDIO: frozenset({ClipKind.AUDIO}),
    TrackKind.SUBTITLE: frozenset({ClipKind.SUBTITLE}),
}
# Which asset kinds each media clip kind can play.
_ASSET_KINDS: Final[dict[ClipKind, frozenset[AssetKind]]] = {
    ClipKind.VIDEO: frozenset({AssetKind.VIDEO}),
    ClipKind.IMAGE: frozenset({AssetKind.IMAGE}),
    ClipKind.AUDIO: frozenset({AssetKind.AUDIO, AssetKind.VIDEO}),
}
# Reader problems that do not change what a render shows.
_HARMLESS_PATHS: Final = ("project/title", "project/thumbnail_asset")


# --- Request options ------------------------------------------------------------------------

_P_RESOLUTION = re.compile(r"^(\d{2,4})p$")
_WXH_RESOLUTION = re.compile(r"^(\d{2,4})x(\d{2,4})$")


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def parse_resolution(resolution: str, project_width: int, project_height: int) -> tuple[int, int]:
    """Output size for ``resolution``; raises ``ValueError`` with a user-facing message.

    Encoders need even sides, so a size derived from the project is rounded to even numbers;
    an explicit ``WxH`` must already be even."""
    text = resolution.strip().lower()
    if text == "project":
        width, height = _even(project_width), _even(project_height)
    elif match := _P_RESOLUTION.match(text):
        height = int(match.group(1))
        if height % 2:
            raise ValueError(f"height must be even, got {height}")
        width = _even(project_width * height / project_height)
    elif match := _WXH_RESOLUTION.match(text):
        width, height = int(match.group(1)), int(match.group(2))
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even, got {width}x{height}")
    else:
        raise ValueError(
            f"expected 'project', '<height>p' (e.g. 720p) or '<width>x<height>', "
            f"got {resolution[:40]!r}"
        )
    if not (SIDE_MIN <= width <= SIDE_MAX and SIDE_MIN <= height <= SIDE_MAX):
        raise ValueError(f"{width}x{height} is outside {SIDE_MIN}..{SIDE_MAX} pixels on a side")
    return width, height


# --- Building ---------------------------------------------------------------------------------


def _clip_path(clip: Clip, field_name: str) -> str:
    return f"clips/{clip.id}/{field_name}"


@dataclass(slots=True)
class _Builder:
    timeline: Timeline
    options: RenderOptions
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # -- document checks --------------------------------------------------------------

    def check_reader_problems(self) -> None:
        # Entries the reader had to skip or repair would render differently from what their
        # author sees, so they stop the render rather than vanish silently.
        for problem in self.timeline.problems:
            if not problem.path.startswith(_HARMLESS_PATHS):
                self.problems.append(problem)

    def check_clip(self, clip: Clip, track: Track) -> None:
        if clip.kind not in _ALLOWED[track.kind]:
            allowed = ", ".join(sorted(k.value for k in _ALLOWED[track.kind]))
            self.problem(
                _clip_path(clip, "kind"),
                f"a {clip.kind.value} clip cannot be on {track.kind.value} track "
                f"{track.id!r} (it holds: {allowed})",
            )
        if clip.end_ms > DURATION_MS_MAX:
            self.problem(
                _clip_path(clip, "start_ms"),
                f"ends at {clip.end_ms} ms, beyond the longest render ({DURATION_MS_MAX} ms)",
            )
        if clip.kind in (ClipKind.SUBTITLE, ClipKind.TITLE):
            self.check_text(clip)
        else:
            self.check_media(clip)

    def check_text(self, clip: Clip) -> None:
        if clip.text is None or not clip.text.strip():
            self.problem(_clip_path(clip, "text"), f"a {clip.kind.value} clip needs text")
        elif len(clip.text) > CUE_CHARS_MAX:
            self.problem(
                _clip_path(clip, "text"),
                f"{len(clip.text)} characters; at most {CUE_CHARS_MAX} are shown on screen",
            )

    def check_media(self, clip: Clip) -> None:
        if clip.asset is None:
            self.problem(_clip_path(clip, "asset"), f"a {clip.kind.value} clip needs an asset")
            return
        asset = self.timeline.asset(clip.asset)
        if asset is None:  # The reader already reports unknown references; not reached then.
            self.problem(_clip_path(clip, "asset"), f"unknown asset {clip.asset!r}")
            return
        kinds = _ASSET_KINDS[clip.kind]
        if asset.kind not in kinds:
            self.problem(
                _clip_path(clip, "asset"),
                f"a {clip.kind.value} clip cannot play {asset.kind.value} asset {asset.id!r}",
            )
        if asset.kind is not AssetKind.IMAGE and asset.duration_ms is not None:
            end = clip.source_in_ms + clip.duration_ms
            if clip.source_in_ms >= asset.duration_ms:
                self.problem(
                    _clip_path(clip, "source_in_ms"),
                    f"starts at {clip.source_in_ms} ms of asset {asset.id!r}, "
                    f"which is only {asset.duration_ms} ms long",
                )
            elif end > asset.duration_ms:
                self.problem(
                    _clip_path(clip, "duration_ms"),
                    f"plays asset {asset.id!r} up to {end} ms, "
                    f"but it is only {asset.duration_ms} ms long",
                )

    def check_overlaps(self, track: Track, clips: Sequence[Clip]) -> None:
        # Clips arrive sorted by start: one pass finds every overlap with an earlier clip.
        previous: Clip | None = None
        for clip in clips:
            if previous is not None and clip.start_ms < previous.end_ms:
                self.problem(
                    _clip_path(clip, "start_ms"),
                    f"overlaps clip {previous.id!r} on track {track.id!r} "
                    f"({previous.start_ms}-{previous.end_ms} ms)",
                )
            if previous is None or clip.end_ms > previous.end_ms:
                previous = clip

    # -- output settings --------------------------------------------------------------

    def size(self) -> tuple[int, int]:
        project = self.timeline.project
        try:
            return parse_resolution(self.options.resolution, project.width, project.height)
        except ValueError as exc:
            self.problem("options/resolution", str(exc))
            return SIDE_MIN, SIDE_MIN

    def fps(self) -> float:
        fps = self.timeline.project.fps
        if fps > FPS_MAX:
            self.problem("project/fps", f"{fps} frames per second; at most {FPS_MAX:g}")
            return FPS_MAX
        return fps

    def window(self) -> tuple[int, int]:
        """The ``[start, end)`` of the timeline to render."""
        timeline_end = max((c.end_ms for c in self.timeline.clips), default=0)
        start = self.options.start_ms if self.options.start_ms is not None else 0
        end = self.options.end_ms if self.options.end_ms is not None else timeline_end
        if timeline_end == 0:
            self.problem("timeline", "the timeline is empty: add clips before rendering")
            return 0, 0
        if start < 0:
            self.problem("options/range", f"start_ms must be >= 0, got {start}")
        elif start >= timeline_end:
            self.problem(
                "options/range",
                f"starts at {start} ms, after the timeline ends ({timeline_end} ms)",
            )
        elif end <= start:
            self.problem("options/range", f"end_ms ({end}) must be after start_ms ({start})")
        elif end - start > DURATION_MS_MAX:
            self.problem(
                "options/range",
                f"{end - start} ms long; a render is at most {DURATION_MS_MAX} ms",
            )
        return start, end


def _cut(clip: Clip, start: int, end: int) -> tuple[int, int, int] | None:
    """``(start, duration, source_in)`` of the part of ``clip`` inside ``[start, end)``,
    relative to ``start``; ``None`` when the clip lies outside."""
    cut_start = max(clip.start_ms, start)
    cut_end = min(clip.end_ms, end)
    if cut_end <= cut_start:
        return None
    return cut_start - start, cut_end - cut_start, clip.source_in_ms + (cut_start - clip.start_ms)


def build_spec(timeline: Timeline, options: RenderOptions) -> RenderSpec:
    """The render spec of ``timeline`` for ``options``; raises ``InvalidRender``."""
    builder = _Builder(timeline, options)
    builder.check_reader_problems()
    layers = {track.id: index for index, track in enumerate(timeline.tracks)}
    for track in timeline.tracks:
        clips = timeline.clips_on(track.id)
        for clip in clips:
            builder.check_clip(clip, track)
        builder.check_overlaps(track, clips)
    width, height = builder.size()
    fps = builder.fps()
    start, end = builder.window()
    if builder.problems:
        raise InvalidRender(sorted(set(builder.problems), key=lambda p: (p.path, p.message)))

    assets = {asset.id: asset for asset in timeline.assets}
    tracks = {track.id: track for track in timeline.tracks}
    visuals: list[VisualItem] = []
    audio: list[AudioItem] = []
    titles: list[Cue] = []
    subtitles: dict[str, list[Cue]] = {
        t.id: [] for t in timeline.tracks if t.kind is TrackKind.SUBTITLE
    }
    for clip in timeline.clips:  # sorted by (track position, start, id)
        cut = _cut(clip, start, end)
        if cut is None:
            continue
        at, duration, source_in = cut
        track = tracks[clip.track]
        if clip.kind in (ClipKind.SUBTITLE, ClipKind.TITLE):
            cue = Cue(clip.id, at, duration, (clip.text or "").strip())
            (subtitles[track.id] if clip.kind is ClipKind.SUBTITLE else titles).append(cue)
            continue
        asset = assets[clip.asset or ""]
        if clip.kind in (ClipKind.VIDEO, ClipKind.IMAGE):
            visuals.append(
                VisualItem(
                    clip.id,
                    clip.kind,
                    asset.id,
                    asset.uri,
                    at,
                    duration,
                    source_in,
                    layers[track.id],
                )
            )
        if clip.kind in (ClipKind.VIDEO, ClipKind.AUDIO) and not track.muted and clip.volume > 0:
            audio.append(
                AudioItem(
                    clip.id,
                    asset.id,
                    asset.uri,
                    at,
                    duration,
                    source_in,
                    clip.volume,
                    from_video=clip.kind is ClipKind.VIDEO,
                )
            )

    subtitle_tracks = (
        ()
        if options.subtitles is SubtitleMode.NONE
        else tuple(
            SubtitleTrack(track_id, tracks[track_id].name, tuple(cues))
            for track_id, cues in subtitles.items()
            if cues
        )
    )
    _check_counts(visuals, audio, subtitle_tracks, titles)
    used = {item.asset_id for item in visuals} | {item.asset_id for item in audio}
    return RenderSpec(
        width=width,
        height=height,
        fps=fps,
        duration_ms=end - start,
        range_start_ms=start,
        format=options.format,
        subtitle_mode=options.subtitles,
        title=timeline.project.title,
        visuals=tuple(visuals),
        audio=tuple(audio),
        subtitles=subtitle_tracks,
        titles=tuple(titles),
        assets={asset_id: assets[asset_id].uri for asset_id in sorted(used)},
    )


def _check_counts(
    visuals: Sequence[VisualItem],
    audio: Sequence[AudioItem],
    subtitles: Iterable[SubtitleTrack],
    titles: Sequence[Cue],
) -> None:
    problems = []
    if len(visuals) > VISUAL_ITEMS_MAX:
        problems.append(
            Problem(
                "timeline",
                f"{len(visuals)} video and image clips in the range; "
                f"at most {VISUAL_ITEMS_MAX} per render (render a shorter range)",
            )
        )
    if len(audio) > AUDIO_ITEMS_MAX:
        problems.append(
            Problem(
                "timeline",
                f"{len(audio)} sounding clips in the range; "
                f"at most {AUDIO_ITEMS_MAX} per render (render a shorter range)",
            )
        )
    cues = sum(len(track.cues) for track in subtitles) + len(titles)
    if cues > CUES_MAX:
        problems.append(Problem("timeline", f"{cues} subtitle and title clips; at most {CUES_MAX}"))
    if problems:
        raise InvalidRender(problems)

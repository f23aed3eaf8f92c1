"""The ffmpeg command that renders a ``RenderSpec`` (pure: plain data in, arguments and file
contents out; ``render.ffmpeg_local`` runs it).

``build_command``: one input per clip, trimmed at the input (``-ss``/``-t``) so ffmpeg decodes
only what plays; a black ``color`` source the length of the output; each picture scaled to
fit, shifted to its start and overlaid in track order; sounds resampled, set to their volume,
delayed to their start and mixed over silence; subtitles written as ASS (burned with libass,
``ass_document``) or SRT (muxed as subtitle streams, ``srt_document``, which uses the
product's one SRT writer, ``ai.subtitles_format``). The files the command reads (subtitle
scripts) come back with it, to be written into ffmpeg's working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ai import subtitles_format
from crdt.timeline import ClipKind
from render.spec import Cue, OutputFormat, RenderSpec, SubtitleMode, SubtitleTrack

__all__ = [
    "SAMPLE_RATE",
    "SUBTITLE_FILE",
    "FfmpegCommand",
    "ass_document",
    "build_command",
    "srt_document",
]

SAMPLE_RATE: Final = 48_000
SUBTITLE_FILE: Final = "subtitles.ass"


# --- Subtitle documents -----------------------------------------------------------------------


def _ass_time(ms: int) -> str:
    centis = ms // 10
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6000)
    seconds, centis = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{centis:02d}"


def _ass_text(text: str) -> str:
    # A brace opens an override block and a backslash starts a tag: keep both literal.
    text = text.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")
    return "\\N".join(line.strip() for line in text.strip().splitlines())


def ass_document(spec: RenderSpec) -> str:
    """Every cue to burn in (subtitles when burned, titles always), as an ASS script sized to
    the output so fonts scale with the resolution."""
    size = max(12, round(spec.height * 0.055))
    margin = max(8, round(spec.height * 0.05))
    outline = max(1, round(size / 16))
    style = "Style: {name},DejaVu Sans,{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,{bold},0,0,0,100,100,0,0,1,{outline},0,{align},{margin},{margin},{margin},1"  # noqa: E501
    lines = [
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {spec.width}",
        f"PlayResY: {spec.height}",
        "WrapStyle: 0",
        "ScaledBorderAndShadow: yes",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        style.format(name="Subtitle", size=size, bold=0, outline=outline, align=2, margin=margin),
        style.format(name="Title", size=size * 2, bold=-1, outline=outline, align=5, margin=margin),
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events: list[tuple[int, str, Cue]] = []
    if spec.subtitle_mode is SubtitleMode.BURN:
        events += [(0, "Subtitle", cue) for track in spec.subtitles for cue in track.cues]
    events += [(1, "Title", cue) for cue in spec.titles]
    for layer, style_name, cue in sorted(events, key=lambda e: (e[2].start_ms, e[0])):
        lines.append(
            f"Dialogue: {layer},{_ass_time(cue.start_ms)},{_ass_time(cue.end_ms)},"
            f"{style_name},,0,0,0,,{_ass_text(cue.text)}"
        )
    return "\n".join(lines) + "\n"


def srt_document(track: SubtitleTrack) -> str:
    """One subtitle track as SubRip (ffmpeg converts it to mov_text or WebVTT)."""
    return subtitles_format.to_srt(
        subtitles_format.Cue(cue.start_ms, cue.end_ms, cue.text) for cue in track.cues
    )


# --- Command ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FfmpegCommand:
    args: tuple[str, ...]  # after the executable
    files: dict[str, str] = field(default_factory=dict)  # name -> content, in the working dir


def _s(ms: int) -> str:
    """Milliseconds as ffmpeg seconds, exactly."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def _encoder_args(spec: RenderSpec, preset: str, crf: int | None) -> list[str]:
    if spec.format is OutputFormat.WEBM:
        return [
            "-c:v", "libvpx-vp9", "-crf", str(crf if crf is not None else 32), "-b:v", "0",
            "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
            "-pix_fmt", "yuv420p",
            "-c:a", "libopus", "-b:a", "128k",
        ]  # fmt: skip
    return [
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf if crf is not None else 23),
        "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k",
        "-movflags", "+faststart",
    ]  # fmt: skip


def build_command(
    spec: RenderSpec,
    output: str,
    *,
    has_audio: Mapping[str, bool],
    preset: str = "veryfast",
    crf: int | None = None,
    threads: int | None = None,
) -> FfmpegCommand:
    """The ffmpeg arguments that render ``spec`` to ``output``.

    Item ``uri``s must be paths ffmpeg can open. ``has_audio[asset_id]`` says whether a video
    asset has a sound stream; a video clip's sound is mixed only if it does.
    """
    inputs: list[str] = []
    graph: list[str] = []
    files: dict[str, str] = {}
    duration = _s(spec.duration_ms)
    fps = f"{spec.fps:g}"
    w, h = spec.width, spec.height

    def add_input(*args: str) -> int:
        # ``file:`` makes ffmpeg read a local file whatever its name looks like
        # (``concat:...``, ``http:...``), never another protocol.
        *options, path = args
        inputs.extend([*options, path if path.startswith("file:") else f"file:{path}"])
        return inputs.count("-i") - 1

    # Pictures: black canvas, then every clip overlaid in track order.
    graph.append(f"color=c=black:s={w}x{h}:r={fps}:d={duration},format=yuv420p[vbase0]")
    video_inputs: dict[str, int] = {}
    for n, item in enumerate(spec.visuals):
        start, end = _s(item.start_ms), _s(item.end_ms)
        fit = f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1"
        if item.kind is ClipKind.IMAGE:
            index = add_input("-framerate", fps, "-i", item.uri)
            # Scale the one decoded picture once, then repeat it for the clip's length.
            chain = f"[{index}:v]{fit},loop=loop=-1:size=1,trim=duration={_s(item.duration_ms)}"
        else:
            index = add_input(
                "-ss", _s(item.source_in_ms), "-t", _s(item.duration_ms), "-i", item.uri
            )
            video_inputs[item.clip_id] = index
            chain = f"[{index}:v]{fit},fps={fps}"
        graph.append(f"{chain},setpts=PTS-STARTPTS+{start}/TB[v{n}]")
        graph.append(
            f"[vbase{n}][v{n}]overlay=x=(W-w)/2:y=(H-h)/2:eof_action=pass:"
            f"enable='gte(t,{start})*lt(t,{end})'[vbase{n + 1}]"
        )
    video_out = f"vbase{len(spec.visuals)}"
    burn = spec.titles or (spec.subtitle_mode is SubtitleMode.BURN and spec.subtitles)
    if burn:
        files[SUBTITLE_FILE] = ass_document(spec)
        graph.append(f"[{video_out}]ass={SUBTITLE_FILE}[vout]")
    else:
        graph.append(f"[{video_out}]null[vout]")

    # Sound: silence the length of the output, with every sounding clip mixed over it.
    graph.append(f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=duration={duration}[abase]")
    mix = ["[abase]"]
    for n, sound in enumerate(spec.audio):
        if sound.from_video:
            if not has_audio.get(sound.asset_id, False) or sound.clip_id not in video_inputs:
                continue
            index = video_inputs[sound.clip_id]
        else:
            index = add_input(
                "-ss", _s(sound.source_in_ms), "-t", _s(sound.duration_ms), "-i", sound.uri
            )
        graph.append(
            f"[{index}:a]aresample={SAMPLE_RATE},"
            f"aformat=sample_fmts=fltp:channel_layouts=stereo,"
            f"volume={sound.volume:g},adelay={sound.start_ms}:all=1[a{n}]"
        )
        mix.append(f"[a{n}]")
    if len(mix) == 1:
        graph.append("[abase]anull[aout]")
    else:
        graph.append(
            f"{''.join(mix)}amix=inputs={len(mix)}:duration=first:normalize=0:dropout_transition=0,"
            f"atrim=duration={duration}[aout]"
        )

    # Subtitle streams: one SRT input per track, converted by the muxer's codec.
    maps = ["-map", "[vout]", "-map", "[aout]"]
    metadata: list[str] = []
    if spec.subtitle_mode is SubtitleMode.STREAM:
        for n, track in enumerate(spec.subtitles):
            name = f"subtitles-{n}.srt"
            files[name] = srt_document(track)
            index = add_input("-f", "srt", "-i", name)
            maps += ["-map", f"{index}:s"]
            metadata += [f"-metadata:s:s:{n}", f"title={track.name or track.track_id}"]
        if spec.subtitles:
            codec = "webvtt" if spec.format is OutputFormat.WEBM else "mov_text"
            maps += ["-c:s", codec]

    args = [
        "-hide_banner", "-nostdin", "-y", "-benchmark",
        "-progress", "pipe:1", "-nostats",
        *inputs,
        "-filter_complex", ";".join(graph),
        *maps, *metadata,
        *_encoder_args(spec, preset, crf),
        *(["-threads", str(threads)] if threads else []),
        "-r", fps, "-t", duration,
        "-f", spec.format.value, output,
    ]  # fmt: skip
    return FfmpegCommand(tuple(args), files)

"""The local renderer: one ffmpeg process turns a ``RenderSpec`` into a video file.

Two halves. The pure half builds the command (``build_command``): one input per clip, trimmed
at the input (``-ss``/``-t``) so ffmpeg decodes only what plays; a black ``color`` source the
length of the output; each picture scaled to fit, shifted to its start and overlaid in track
order; sounds resampled, set to their volume, delayed to their start and mixed over silence;
subtitles written as ASS (burned with libass) or SRT (muxed as subtitle streams). It also
parses ffmpeg's ``-progress`` output and the media summary ffmpeg prints for an input.

The I/O half (``LocalRenderer``) probes the inputs, runs ffmpeg in a scratch directory, reports
progress while it runs and kills it when the render is cancelled. ffmpeg comes from the
``imageio-ffmpeg`` wheel, so a single machine renders with nothing else installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio

from ai.audio import ffmpeg_exe  # the wheel's ffmpeg, shared with the AI media steps
from crdt.timeline import ClipKind
from render.errors import RenderCancelled, RenderFailed
from render.spec import Cue, OutputFormat, RenderSpec, SubtitleMode, SubtitleTrack

__all__ = [
    "FfmpegCommand",
    "LocalRenderResult",
    "LocalRenderer",
    "MediaInfo",
    "ProgressParser",
    "RenderProgress",
    "ass_document",
    "build_command",
    "ffmpeg_exe",
    "parse_media_info",
    "probe",
    "srt_document",
]

log = logging.getLogger(__name__)

SAMPLE_RATE: Final = 48_000
STDERR_LINES_MAX: Final = 40
PROBE_TIMEOUT_S: Final = 30.0
PROBE_CONCURRENCY: Final = 4
KILL_GRACE_S: Final = 5.0
SUBTITLE_FILE: Final = "subtitles.ass"


# --- Media summary ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration_ms: int | None
    video: tuple[str, ...] = ()  # codec of each video stream
    audio: tuple[str, ...] = ()
    subtitle: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)


_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2})\.(\d+)")
_STREAM = re.compile(r"Stream #\d+:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle): (\w+)")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})[, \[]")


def parse_media_info(text: str) -> MediaInfo:
    """The first input's duration and streams from what ``ffmpeg -i FILE`` prints."""
    duration_ms = None
    if match := _DURATION.search(text):
        hours, minutes, seconds, fraction = match.groups()
        duration_ms = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000 + round(
            int(fraction) * 1000 / 10 ** len(fraction)
        )
    streams: dict[str, list[str]] = {"Video": [], "Audio": [], "Subtitle": []}
    width = height = None
    for line in text.splitlines():
        if "Output #" in line:
            break
        if match := _STREAM.search(line):
            kind, codec = match.groups()
            streams[kind].append(codec)
            if kind == "Video" and width is None and (size := _SIZE.search(line)):
                width, height = int(size.group(1)), int(size.group(2))
    return MediaInfo(
        duration_ms,
        tuple(streams["Video"]),
        tuple(streams["Audio"]),
        tuple(streams["Subtitle"]),
        width,
        height,
    )


async def probe(path: Path | str, *, ffmpeg: str | None = None) -> MediaInfo:
    """Duration and streams of a local media file (``ffmpeg -i``; the wheel ships no
    ffprobe)."""
    name = str(path)
    proc = await asyncio.create_subprocess_exec(
        ffmpeg or ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-i",
        name if name.startswith("file:") else f"file:{name}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return parse_media_info(err.decode("utf-8", "replace"))


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


def _srt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def srt_document(track: SubtitleTrack) -> str:
    """One subtitle track as SubRip (ffmpeg converts it to mov_text or WebVTT)."""
    blocks = []
    for index, cue in enumerate(track.cues, start=1):
        # A blank line ends an SRT block: keep the cue's lines, drop empty ones.
        text = "\n".join(line.strip() for line in cue.text.splitlines() if line.strip())
        blocks.append(f"{index}\n{_srt_time(cue.start_ms)} --> {_srt_time(cue.end_ms)}\n{text}\n")
    return "\n".join(blocks)


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


# --- Progress ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderProgress:
    """How far a render is: ``fraction`` in [0, 1], and the stage it is in."""

    fraction: float
    stage: str

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)


class ProgressParser:
    """Reads ffmpeg's ``-progress`` key=value lines; each block ends with ``progress=``."""

    def __init__(self, duration_ms: int) -> None:
        self._duration_us = max(1, duration_ms * 1000)
        self._out_time_us = 0
        self.done = False

    def feed(self, line: str) -> float | None:
        """The fraction done when ``line`` closes a block, else None."""
        key, _, value = line.strip().partition("=")
        if key == "out_time_us":
            with contextlib.suppress(ValueError):
                self._out_time_us = max(self._out_time_us, int(value))
        elif key == "progress":
            self.done = value == "end"
            return 1.0 if self.done else min(0.999, self._out_time_us / self._duration_us)
        return None


_BENCH = re.compile(r"bench: utime=([\d.]+)s stime=([\d.]+)s rtime=([\d.]+)s")


def parse_cpu_seconds(lines: Sequence[str]) -> float | None:
    """CPU seconds (user + system) ffmpeg reports with ``-benchmark``."""
    for line in reversed(lines):
        if match := _BENCH.search(line):
            return float(match.group(1)) + float(match.group(2))
    return None


# --- Runner -----------------------------------------------------------------------------------

ProgressCallback = Callable[[RenderProgress], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LocalRenderResult:
    path: Path
    size_bytes: int
    wall_seconds: float
    cpu_seconds: float  # what the render used, as ffmpeg measured it


class LocalRenderer:
    """Renders specs with ffmpeg on this machine. One process per render; ``render`` is
    cancellable (the process is killed and the partial file removed)."""

    def __init__(
        self,
        *,
        ffmpeg: str | None = None,
        preset: str = "veryfast",
        crf: int | None = None,
        threads: int | None = None,
        scratch_dir: Path | None = None,
    ) -> None:
        self.ffmpeg = ffmpeg or ffmpeg_exe()
        self.preset = preset
        self.crf = crf
        self.threads = threads
        self.scratch_dir = scratch_dir

    async def _has_audio(self, spec: RenderSpec) -> dict[str, bool]:
        sources = sorted({a.asset_id: a.uri for a in spec.audio if a.from_video}.items())
        limit = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(uri: str) -> bool:
            async with limit:
                return (await probe(uri, ffmpeg=self.ffmpeg)).has_audio

        found = await asyncio.gather(*(one(uri) for _, uri in sources))
        return {asset_id: has for (asset_id, _), has in zip(sources, found, strict=True)}

    async def render(
        self,
        spec: RenderSpec,
        output: Path,
        on_progress: ProgressCallback | None = None,
    ) -> LocalRenderResult:
        """Render ``spec`` (whose uris are local paths) to ``output`` (an absolute path: ffmpeg
        runs in a scratch directory)."""
        if not output.is_absolute():
            raise ValueError(f"output must be an absolute path, got {output}")

        async def report(fraction: float, stage: str) -> None:
            if on_progress is not None:
                await on_progress(RenderProgress(fraction, stage))

        await report(0.0, "preparing")
        has_audio = await self._has_audio(spec)
        command = build_command(
            spec,
            str(output),
            has_audio=has_audio,
            preset=self.preset,
            crf=self.crf,
            threads=self.threads,
        )
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="render-", dir=self.scratch_dir) as workdir:
            for name, content in command.files.items():
                await anyio.Path(workdir, name).write_text(content, encoding="utf-8")
            await report(0.0, "rendering")
            try:
                stderr = await self._run(command, Path(workdir), spec.duration_ms, report)
            except BaseException:
                _discard(output)  # a partial file must never be delivered
                raise
        await report(1.0, "rendered")
        return LocalRenderResult(
            path=output,
            size_bytes=_size(output),
            wall_seconds=time.monotonic() - started,
            cpu_seconds=parse_cpu_seconds(stderr) or 0.0,
        )

    async def _run(
        self,
        command: FfmpegCommand,
        workdir: Path,
        duration_ms: int,
        report: Callable[[float, str], Awaitable[None]],
    ) -> list[str]:
        proc = await asyncio.create_subprocess_exec(
            self.ffmpeg,
            *command.args,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill reaches nothing else
        )
        assert proc.stdout is not None and proc.stderr is not None
        tail: deque[str] = deque(maxlen=STDERR_LINES_MAX)

        async def read_stderr() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                tail.append(raw.decode("utf-8", "replace").rstrip())

        stderr_task = asyncio.create_task(read_stderr())
        parser = ProgressParser(duration_ms)
        try:
            async for raw in proc.stdout:
                fraction = parser.feed(raw.decode("ascii", "replace"))
                if fraction is not None and not parser.done:
                    await report(fraction, "rendering")
            code = await proc.wait()
            await stderr_task
        except BaseException:
            _kill(proc)
            await proc.wait()
            stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stderr_task
            raise
        if code != 0:
            detail = " | ".join(line for line in tail if line and not line.startswith("bench:"))
            raise RenderFailed(f"ffmpeg exited with status {code}: {detail[-1500:]}")
        return list(tail)


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    return path.stat().st_size


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def render_cancellable(
    renderer: LocalRenderer,
    spec: RenderSpec,
    output: Path,
    cancelled: asyncio.Event,
    on_progress: ProgressCallback | None = None,
) -> LocalRenderResult:
    """``renderer.render`` that stops, killing ffmpeg, as soon as ``cancelled`` is set."""
    task = asyncio.create_task(renderer.render(spec, output, on_progress))
    waiter = asyncio.create_task(cancelled.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise RenderCancelled("the render was cancelled")
    return task.result()

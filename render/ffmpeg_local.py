"""The local renderer: one ffmpeg process turns a ``RenderSpec`` into a video file.

``LocalRenderer`` probes the inputs (``probe``), builds the command (``render.ffmpeg_command``,
pure), runs ffmpeg in a scratch directory, reports progress while it runs (read with
``render.ffmpeg_output``) and kills it when the render is cancelled (``render_cancellable``).
ffmpeg comes from the ``imageio-ffmpeg`` wheel (``ai.audio.ffmpeg_exe``), so a single machine
renders with nothing else installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

from ai.audio import ffmpeg_exe  # the wheel's ffmpeg, shared with the AI media steps
from render.errors import RenderCancelled, RenderFailed
from render.ffmpeg_command import FfmpegCommand, build_command
from render.ffmpeg_output import MediaInfo, ProgressParser, parse_cpu_seconds, parse_media_info
from render.progress import ProgressCallback, RenderProgress
from render.spec import RenderSpec

__all__ = [
    "LocalRenderResult",
    "LocalRenderer",
    "probe",
    "render_cancellable",
]

log = logging.getLogger(__name__)

STDERR_LINES_MAX: Final = 40
PROBE_TIMEOUT_S: Final = 30.0
PROBE_CONCURRENCY: Final = 4
KILL_GRACE_S: Final = 5.0


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


# --- Runner -----------------------------------------------------------------------------------


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

"""The render job: a ``RenderSpec`` rendered by the configured backend, stored, and linked.

The generic flow is ``ai.jobs``' (estimate, hold, run, capture the actual cost, deliver; release
on failure or cancel). What is render-specific lives here:

- ``check``: before a job is created, every asset URI must be one the backend may read, so a
  render never fails half-way on media it was never allowed to touch. The local renderer reads
  media stored for this project (``media://projects/<id>/...``) and ``file://`` paths under
  the configured roots; Remotion Lambda fetches over HTTP(S), so it also takes ``https://``
  URLs and gets stored media as time-limited links. Nothing reads another project's media.
- ``estimate``: render seconds from the output's length, size and frame rate.
- ``handle``: resolve media, render with live progress (percent and stage, shown to the
  project's collaborators), store the file under ``projects/<id>/renders/<job>.<ext>`` and
  return the usage: the CPU seconds ffmpeg used, or the billed Lambda seconds Remotion reports.
  Rendering and storing is one checkpointed step, so a retry after a crash never renders twice.
- delivery adds the file to the project's assets (origin ``render``) through the live room,
  so every collaborator sees it appear; the job's result links the same asset and key.

Both backends are priced on the ``render_seconds`` meter of the Remotion Lambda row of the
price table: a CPU second of a local render costs what a billed Lambda second does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse

import anyio

from ai.errors import (
    InvalidInput,
    JobCancelled,
    MediaNotFound,
    ProviderRejected,
    ProviderTransient,
)
from ai.jobs.context import JobContext, JobKind, Outcome
from ai.media import LocalMediaStore, key_of, media_uri
from ai.usage import Usage
from billing.prices import Meter, PriceTable
from crdt import timeline as tl
from crdt.timeline import Problem
from render.errors import (
    BackendMisconfigured,
    InvalidRender,
    MediaUnavailable,
    RenderCancelled,
    RenderFailed,
)
from render.ffmpeg_local import LocalRenderer
from render.progress import RenderProgress
from render.remotion_lambda import RemotionLambdaRenderer
from render.spec import RenderSpec

__all__ = ["KIND", "PRODUCT", "RenderConfig", "RenderService"]

KIND: Final = "render"
QUEUE: Final = "render"
PRODUCT: Final = "remotion/lambda-2048mb"
RENDER_ORIGIN: Final = "render"
# Render seconds per second of 1080p30 output, set above what renders use so the hold covers
# the capture (which never exceeds it). Local: about twice the CPU time of the benchmark's
# veryfast render (bench/render_bench.py). Lambda: an allowance for the billed time of every
# function of a chunked render, retried chunks included; compare it with the
# ``render_seconds`` of real jobs and adjust.
LOCAL_SECONDS_PER_OUTPUT_S: Final = 1.0
LAMBDA_SECONDS_PER_OUTPUT_S: Final = 12.0
LOCAL_OVERHEAD_S: Final = 2
LAMBDA_OVERHEAD_S: Final = 15
_REFERENCE_PIXEL_RATE: Final = 1920 * 1080 * 30
FETCH_CONCURRENCY: Final = 4
# Where each part of the job sits in its progress (rendering is the long part).
_RENDER_FROM, _RENDER_TO = 0.05, 0.95


@dataclass(frozen=True, slots=True)
class RenderConfig:
    file_roots: tuple[Path, ...] = ()  # ``file://`` media allowed under these (local only)
    local_inputs_max: int = 100  # each input is decoded at once: ~30 MB each at 1080p
    local_concurrency: int = 1  # local renders at once in this process; others wait their turn
    media_url_ttl_s: int = 6 * 3600  # links handed to Lambda outlive the longest render
    progress_interval_s: float = 0.5


class _Progress:
    """Renderer progress mapped into the job's range, written at most every interval (each
    write is also where a cancel is noticed)."""

    def __init__(self, ctx: JobContext, interval_s: float) -> None:
        self._ctx = ctx
        self._interval_s = interval_s
        self._last_at = -math.inf
        self._last_stage = ""

    async def __call__(self, progress: RenderProgress) -> None:
        now = time.monotonic()
        if progress.stage == self._last_stage and now - self._last_at < self._interval_s:
            return
        self._last_at, self._last_stage = now, progress.stage
        fraction = _RENDER_FROM + (_RENDER_TO - _RENDER_FROM) * progress.fraction
        await self._ctx.progress(fraction, progress.stage)


@contextlib.asynccontextmanager
async def _as_job_errors(provider: str) -> AsyncIterator[None]:
    """Render errors as the job runner knows them: what to retry, what to show."""
    try:
        yield
    except RenderCancelled as exc:
        raise JobCancelled() from exc
    except (InvalidRender, MediaUnavailable) as exc:
        raise InvalidInput(exc.message, code=exc.code) from exc
    except BackendMisconfigured as exc:
        raise ProviderRejected(provider, exc.message, code=exc.code) from exc
    except RenderFailed as exc:
        if exc.transient:
            raise ProviderTransient(provider, exc.message, code="render_unavailable") from exc
        raise ProviderRejected(provider, exc.message, code="render_failed") from exc


def _file_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _under(path: str, roots: tuple[Path, ...]) -> bool:
    return any(path == str(root) or path.startswith(str(root) + os.sep) for root in roots)


class RenderService:
    """Checks, prices and runs render jobs on one backend."""

    def __init__(
        self,
        config: RenderConfig,
        *,
        local: LocalRenderer | None = None,
        remote: RemotionLambdaRenderer | None = None,
    ) -> None:
        if (local is None) == (remote is None):
            raise ValueError("give exactly one backend: local or remote")
        self.config = config
        self.local = local
        self.remote = remote
        self._roots = tuple(Path(os.path.realpath(root)) for root in config.file_roots)
        # A render keeps the machine's cores busy: more at once only makes each one slower.
        self._local_slots = asyncio.Semaphore(max(1, config.local_concurrency))

    @property
    def backend(self) -> str:
        return "local" if self.local is not None else "remotion_lambda"

    def job_kind(self) -> JobKind:
        return JobKind(KIND, self.handle, queue=QUEUE)

    # -- before the job ---------------------------------------------------------------------

    def check(self, spec: RenderSpec, project_id: str) -> None:
        """Raise ``InvalidRender`` unless this backend may read every asset of ``spec``."""
        problems = [
            Problem(f"assets/{asset_id}/uri", message)
            for asset_id, uri in spec.assets.items()
            if (message := self._uri_problem(uri, project_id)) is not None
        ]
        inputs = len(spec.visuals) + len(spec.audio)
        if self.local is not None and inputs > self.config.local_inputs_max:
            problems.append(
                Problem(
                    "timeline",
                    f"{inputs} clips in the range; this server renders at most "
                    f"{self.config.local_inputs_max} at once (render a shorter range)",
                )
            )
        if problems:
            raise InvalidRender(problems)

    def _uri_problem(self, uri: str, project_id: str) -> str | None:
        key = key_of(uri)
        if key is not None:
            if key.startswith(f"projects/{project_id}/"):
                return None
            return "is not media stored for this project"
        scheme = urlparse(uri).scheme.lower()
        if scheme == "file" and self.local is not None:
            if _under(os.path.normpath(_file_path(uri)), self._roots):
                return None
            return "is a file outside the folders this server may render from"
        if scheme in ("http", "https") and self.remote is not None:
            return None
        return "cannot be read by this renderer: upload the media to the project first"

    def estimate(self, spec: RenderSpec) -> Usage:
        scale = spec.pixels * spec.fps / _REFERENCE_PIXEL_RATE
        if self.local is not None:
            per_second, overhead = LOCAL_SECONDS_PER_OUTPUT_S, LOCAL_OVERHEAD_S
        else:
            per_second, overhead = LAMBDA_SECONDS_PER_OUTPUT_S, LAMBDA_OVERHEAD_S
        seconds = math.ceil(spec.duration_ms / 1000 * per_second * max(scale, 0.05)) + overhead
        return Usage.of(PRODUCT, Meter.RENDER_SECONDS, seconds)

    # -- the job ----------------------------------------------------------------------------

    async def handle(self, ctx: JobContext) -> Outcome:
        try:
            spec = RenderSpec.from_json(ctx.job.input["spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("the job holds no valid render spec", code="invalid_render") from exc
        await ctx.progress(0.0, "preparing")
        stored = await ctx.step("render", lambda: self._render_and_store(ctx, spec))
        asset_id = f"render-{ctx.job.id.hex[:16]}"
        result = {**stored, "asset_id": asset_id, "uri": media_uri(stored["key"])}

        async def deliver() -> None:
            await ctx.rooms.edit(ctx.project_id, lambda doc: _link(doc, spec, result))

        return Outcome(result=result, usage=ctx.usage(), deliver=deliver)

    async def _render_and_store(
        self, ctx: JobContext, spec: RenderSpec
    ) -> tuple[dict[str, Any], Usage]:
        extension = spec.format.value
        key = f"projects/{ctx.project_id}/renders/{ctx.job.id}.{extension}"
        output = ctx.workdir / f"render.{extension}"
        on_progress = _Progress(ctx, self.config.progress_interval_s)
        if self.local is not None:
            if self._local_slots.locked():
                await ctx.progress(_RENDER_FROM, "waiting")
            async with self._local_slots, _as_job_errors("ffmpeg"):
                paths = await self._local_media(ctx, spec)
                rendered = await self.local.render(spec.with_uris(paths), output, on_progress)
            seconds = math.ceil(rendered.cpu_seconds or rendered.wall_seconds)
            extra: dict[str, Any] = {"wall_seconds": round(rendered.wall_seconds, 3)}
        else:
            assert self.remote is not None
            async with _as_job_errors("remotion"):
                urls = await self._remote_media(ctx, spec)
                remote = await self.remote.render(spec.with_uris(urls), on_progress)
                await ctx.progress(_RENDER_TO, "fetching")
                await self.remote.download(remote, anyio.Path(output))
            seconds = remote.render_seconds or _seconds_from_cost(remote.cost_usd)
            extra = {"render_id": remote.render_id, "provider_cost_usd": remote.cost_usd}
        await ctx.progress(_RENDER_TO, "storing")
        size = (await anyio.Path(output).stat()).st_size
        await ctx.media.put_file(key, output, spec.format.media_type)
        value = {
            "key": key,
            "format": spec.format.value,
            "width": spec.width,
            "height": spec.height,
            "fps": spec.fps,
            "duration_ms": spec.duration_ms,
            "range_start_ms": spec.range_start_ms,
            "size_bytes": size,
            "backend": self.backend,
            "render_seconds": seconds,
            **extra,
        }
        return value, Usage.of(PRODUCT, Meter.RENDER_SECONDS, max(1, seconds))

    async def _local_media(self, ctx: JobContext, spec: RenderSpec) -> dict[str, str]:
        """A local file for every asset: the local store's own file, or a download."""
        folder = ctx.workdir / "media"
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)
        problems: list[Problem] = []

        async def one(index: int, asset_id: str, uri: str) -> tuple[str, str]:
            path = f"assets/{asset_id}/uri"
            if (message := self._uri_problem(uri, ctx.project_id)) is not None:
                problems.append(Problem(path, message))
                return asset_id, ""
            key = key_of(uri)
            if key is None:  # a file:// path under an allowed root, checked again for links
                real = await anyio.Path(_file_path(uri)).resolve()
                if not _under(str(real), self._roots) or not await real.is_file():
                    problems.append(Problem(path, "no such file under the allowed folders"))
                return asset_id, str(real)
            if isinstance(ctx.media, LocalMediaStore):
                local = ctx.media.path_for(key)
                if not await anyio.Path(local).is_file():
                    problems.append(Problem(path, f"no stored media {key!r}"))
                return asset_id, str(local)
            target = folder / f"{index}{Path(key).suffix}"
            async with limit:
                try:
                    await ctx.media.get_file(key, target)
                except MediaNotFound:
                    problems.append(Problem(path, f"no stored media {key!r}"))
            return asset_id, str(target)

        found = await asyncio.gather(
            *(one(n, asset_id, uri) for n, (asset_id, uri) in enumerate(spec.assets.items()))
        )
        if problems:
            raise MediaUnavailable(sorted(problems, key=lambda p: p.path))
        return dict(found)

    async def _remote_media(self, ctx: JobContext, spec: RenderSpec) -> dict[str, str]:
        """A URL Lambda can fetch for every asset."""
        urls: dict[str, str] = {}
        problems: list[Problem] = []
        for asset_id, uri in spec.assets.items():
            path = f"assets/{asset_id}/uri"
            if (message := self._uri_problem(uri, ctx.project_id)) is not None:
                problems.append(Problem(path, message))
                continue
            key = key_of(uri)
            ttl_s = self.config.media_url_ttl_s
            url = uri if key is None else await ctx.media.url(key, ttl_s=ttl_s)
            if urlparse(url).scheme not in ("http", "https"):
                problems.append(
                    Problem(path, "Remotion Lambda needs media it can download: store media in S3")
                )
            urls[asset_id] = url
        if problems:
            raise MediaUnavailable(problems)
        return urls


def _seconds_from_cost(cost_usd: float) -> int:
    """Billed seconds from Remotion's cost estimate, for progress reports without a billed
    duration (older functions)."""
    price = PriceTable(margin_percent=0).unit_price(PRODUCT, Meter.RENDER_SECONDS)
    per_second = price.usd / price.per
    return math.ceil(Fraction(str(cost_usd)) / per_second) if cost_usd > 0 else 0


def _link(doc: Any, spec: RenderSpec, result: dict[str, Any]) -> None:
    """Add the rendered file to the project's assets (again after a retry: no change)."""
    name = f"{spec.title or 'Render'} ({spec.width}x{spec.height}, {spec.format.value})"
    with contextlib.suppress(tl.DuplicateIdError):
        tl.add_asset(
            doc,
            tl.AssetKind.VIDEO,
            name[:200],
            result["uri"],
            duration_ms=spec.duration_ms,
            origin=RENDER_ORIGIN,
            asset_id=result["asset_id"],
        )

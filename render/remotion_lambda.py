"""Rendering on Remotion Lambda: start a render, poll its progress, fetch the output.

The payloads are the ones the official ``remotion-lambda`` Python client sends (built with its
``RenderMediaParams`` and ``RenderProgressParams``), and the function is invoked with boto3, so
the Lambda and S3 endpoints can be set (a local fake of the invoke API in tests, a VPC endpoint
in production). boto3 is blocking: every call runs in a worker thread.

A Remotion function only accepts calls from a client of exactly its own version. The expected
version is a setting (``remotion_version``); it must equal the installed client's version
(checked when the renderer is built) and the deployed function's version (asked from the
function's ``info`` routine before the first render), so a mismatch fails fast with a clear
message instead of on every render.

The composition at ``serve_url`` receives ``RenderSpec.to_json()`` as its input props and
draws the spec as documented in ``render.spec``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import boto3
import remotion_lambda  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from render.errors import BackendMisconfigured, RenderCancelled, RenderFailed
from render.progress import ProgressCallback, RenderProgress
from render.spec import OutputFormat, RenderSpec

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

__all__ = [
    "CLIENT_VERSION",
    "LambdaRenderResult",
    "RemotionLambdaConfig",
    "RemotionLambdaRenderer",
    "parse_invoke_payload",
]

log = logging.getLogger(__name__)

CLIENT_VERSION: Final[str] = remotion_lambda.VERSION
# Above this, input props go through S3 instead of the invoke payload (the client's margin
# under Lambda's 256 KB asynchronous payload limit).
INLINE_PROPS_BYTES_MAX: Final = 200_000 - 5_000 - 1024
# Remotion's codec for each output format.
_CODECS: Final = {OutputFormat.MP4: "h264", OutputFormat.WEBM: "vp8"}
# Lambda errors that a later attempt may not hit.
_TRANSIENT_CODES: Final = frozenset(
    {
        "TooManyRequestsException",
        "ServiceException",
        "EC2ThrottledException",
        "ResourceNotReadyException",
        "ResourceConflictException",
        "SnapStartTimeoutException",
        "ThrottlingException",
    }
)
_CONFIG_CODES: Final = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDeniedExceptionException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "KMSAccessDeniedException",
    }
)


@dataclass(frozen=True, slots=True)
class RemotionLambdaConfig:
    region: str
    function_name: str
    serve_url: str
    version: str  # the deployed function's version; must equal the client's
    composition: str = "Timeline"
    bucket_name: str | None = None  # Remotion's bucket; None: the function picks its own
    endpoint_url: str | None = None  # Lambda endpoint (tests, VPC endpoints)
    s3_endpoint_url: str | None = None
    frames_per_lambda: int | None = None
    concurrency: int | None = None
    privacy: str = "private"
    poll_interval_s: float = 2.0
    timeout_s: float = 900.0
    invoke_timeout_s: float = 60.0
    # How long the composition may hold a frame (``delayRender``) before the chunk fails.
    delay_render_timeout_ms: int = 30_000
    license_key: str | None = None


@dataclass(frozen=True, slots=True)
class LambdaRenderResult:
    render_id: str
    bucket: str
    key: str
    url: str
    size_bytes: int | None
    cost_usd: float  # what Remotion estimates the render cost on AWS
    billed_ms: int  # summed billed duration of every function of the render

    @property
    def render_seconds(self) -> int:
        """Usage on the ``render_seconds`` meter."""
        return math.ceil(self.billed_ms / 1000)


def parse_invoke_payload(raw: bytes) -> dict[str, Any]:
    """The last JSON object of a (possibly streamed) Lambda response."""
    text = raw.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    last: dict[str, Any] = {}
    index = 0
    while index < len(text):
        start = text.find("{", index)
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        if isinstance(value, dict):
            last = value
        index = end
    return last


def _remotion_error(body: dict[str, Any], what: str) -> RenderFailed:
    message = str(body.get("message") or body.get("errorMessage") or "unknown error")[:1000]
    if "version mismatch" in message.lower():
        return BackendMisconfigured(f"Remotion {what}: {message}")
    return RenderFailed(f"Remotion {what}: {message}")


def _stage(progress: dict[str, Any]) -> str:
    if progress.get("done"):
        return "done"
    if progress.get("renderMetadata") is None:
        return "starting"
    encoding = progress.get("encodingStatus") or {}
    if encoding.get("combinedFrames"):
        return "combining"
    return "rendering"


class RemotionLambdaRenderer:
    """Renders specs on Remotion Lambda. Build one per process and share it."""

    name = "remotion_lambda"

    def __init__(self, config: RemotionLambdaConfig, session: boto3.Session | None = None) -> None:
        if config.version != CLIENT_VERSION:
            raise BackendMisconfigured(
                f"remotion_version is {config.version} but the installed remotion-lambda client "
                f"is {CLIENT_VERSION}: install remotion-lambda=={config.version}, or deploy a "
                f"{CLIENT_VERSION} function and set remotion_version to it"
            )
        self.config = config
        session = session or boto3.Session(region_name=config.region)
        botocore_config = Config(
            connect_timeout=10,
            read_timeout=config.invoke_timeout_s,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._lambda: LambdaClient = session.client(
            "lambda",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=botocore_config,
        )
        self._s3: S3Client = session.client(
            "s3",
            region_name=config.region,
            endpoint_url=config.s3_endpoint_url,
            config=botocore_config.merge(Config(s3={"addressing_style": "path"})),
        )
        self._version_checked = False
        self._version_lock = asyncio.Lock()

    # -- invoking ---------------------------------------------------------------------------

    def _invoke_sync(self, payload: str) -> dict[str, Any]:
        try:
            response = self._lambda.invoke(
                FunctionName=self.config.function_name, Payload=payload.encode("utf-8")
            )
            raw = response["Payload"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = f"Lambda {code}: {exc}"
            if code in _CONFIG_CODES:
                raise BackendMisconfigured(message) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            transient = code in _TRANSIENT_CODES or status >= 500
            raise RenderFailed(message, transient=transient) from exc
        except BotoCoreError as exc:  # connection and read timeouts, endpoint unreachable
            raise RenderFailed(f"Lambda unreachable: {exc}", transient=True) from exc
        body = parse_invoke_payload(raw)
        if response.get("FunctionError"):
            raise RenderFailed(
                f"Remotion function failed: {body.get('errorMessage', 'unhandled error')}",
                transient=body.get("errorType") == "Sandbox.Timedout",
            )
        return body

    async def _invoke(self, payload: str, what: str) -> dict[str, Any]:
        body = await anyio.to_thread.run_sync(self._invoke_sync, payload)
        if body.get("type") == "error" or "errorMessage" in body:
            raise _remotion_error(body, what)
        return body

    async def check_version(self) -> None:
        """Ask the deployed function its version once; raise if it is not ours."""
        async with self._version_lock:
            if self._version_checked:
                return
            body = await self._invoke(json.dumps({"type": "info", "logLevel": "info"}), "info")
            deployed = body.get("version")
            if deployed != self.config.version:
                raise BackendMisconfigured(
                    f"the Remotion function {self.config.function_name} has version {deployed}, "
                    f"but remotion_version (and the client) is {self.config.version}: deploy "
                    f"a {self.config.version} function or align the setting and the client"
                )
            self._version_checked = True

    # -- payloads ---------------------------------------------------------------------------

    def _serialized_props(self, spec: RenderSpec) -> dict[str, Any]:
        props = json.dumps(spec.to_json(), separators=(",", ":"))
        if len(props.encode("utf-8")) <= INLINE_PROPS_BYTES_MAX:
            return {"type": "payload", "payload": props}
        if self.config.bucket_name is None:
            raise BackendMisconfigured(
                "this timeline's render props are too large for a Lambda payload; "
                "set remotion_bucket_name so they can be passed through S3"
            )
        digest = hashlib.sha256(props.encode("utf-8")).hexdigest()
        try:
            self._s3.put_object(
                Bucket=self.config.bucket_name,
                Key=f"input-props/{digest}.json",
                Body=props.encode("utf-8"),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            raise RenderFailed(
                f"could not store the render props in S3: {exc}", transient=True
            ) from exc
        return {"type": "bucket-url", "hash": digest, "bucketName": self.config.bucket_name}

    def start_payload(self, spec: RenderSpec, serialized_props: dict[str, Any]) -> str:
        config = self.config
        params = remotion_lambda.RenderMediaParams(
            composition=config.composition,
            serve_url=config.serve_url,
            bucket_name=config.bucket_name,
            region=config.region,
            codec=_CODECS[spec.format],
            privacy=remotion_lambda.Privacy(config.privacy),
            frames_per_lambda=config.frames_per_lambda,
            concurrency=config.concurrency,
            enable_cancellation=True,
            timeout_in_milliseconds=config.delay_render_timeout_ms,
            force_width=spec.width,
            force_height=spec.height,
            force_duration_in_frames=spec.duration_in_frames,
            license_key=config.license_key,
        )
        params.private_serialized_input_props = serialized_props
        # ``forceFps`` takes an integer; a fractional project rate is left to the composition.
        if float(spec.fps).is_integer():
            params.force_fps = int(spec.fps)
        return json.dumps(params.serialize_params(), default=_json_default)

    def progress_payload(self, render_id: str, bucket: str) -> str:
        params = remotion_lambda.RenderProgressParams(
            render_id=render_id,
            bucket_name=bucket,
            function_name=self.config.function_name,
            region=self.config.region,
            log_level="info",
        )
        return json.dumps(params.serialize_params())

    # -- rendering --------------------------------------------------------------------------

    async def render(
        self,
        spec: RenderSpec,
        on_progress: ProgressCallback | None = None,
        *,
        cancelled: asyncio.Event | None = None,
    ) -> LambdaRenderResult:
        """Render ``spec`` (whose uris the function can fetch: https URLs) on Lambda."""

        async def report(fraction: float, stage: str) -> None:
            if on_progress is not None:
                await on_progress(RenderProgress(fraction, stage))

        await report(0.0, "starting")
        await self.check_version()
        props = await anyio.to_thread.run_sync(self._serialized_props, spec)
        started = await self._invoke(self.start_payload(spec, props), "start")
        render_id, bucket = str(started["renderId"]), str(started["bucketName"])
        log.info("remotion render started", extra={"render_id": render_id, "bucket": bucket})
        try:
            return await self._poll(render_id, bucket, report, cancelled)
        except BaseException:
            # Cancelled, failed or interrupted here: stop the functions spending money.
            await self._cancel(render_id, bucket)
            raise

    async def _poll(
        self,
        render_id: str,
        bucket: str,
        report: Callable[[float, str], Awaitable[None]],
        cancelled: asyncio.Event | None,
    ) -> LambdaRenderResult:
        deadline = time.monotonic() + self.config.timeout_s
        payload = self.progress_payload(render_id, bucket)
        while True:
            if cancelled is not None and cancelled.is_set():
                raise RenderCancelled("the render was cancelled")
            progress = await self._invoke(payload, "getRenderProgress")
            if progress.get("fatalErrorEncountered"):
                raise RenderFailed(f"Remotion render {render_id} failed: {_first_error(progress)}")
            if progress.get("done"):
                await report(1.0, "done")
                return _result(render_id, bucket, progress)
            fraction = float(progress.get("overallProgress") or 0.0)
            await report(min(max(fraction, 0.0), 0.999), _stage(progress))
            if time.monotonic() >= deadline:
                raise RenderFailed(
                    f"Remotion render {render_id} did not finish in {self.config.timeout_s:g} s",
                    transient=True,
                )
            if cancelled is None:
                await asyncio.sleep(self.config.poll_interval_s)
            else:
                with anyio.move_on_after(self.config.poll_interval_s):
                    await cancelled.wait()

    async def _cancel(self, render_id: str, bucket: str) -> None:
        """Ask Remotion to stop the render (it was started with cancellation enabled)."""

        def write_signal() -> None:
            self._s3.put_object(
                Bucket=bucket,
                Key=f"renders/{render_id}/cancel.json",
                Body=json.dumps({"cancelledAt": int(time.time() * 1000)}).encode(),
                ContentType="application/json",
            )

        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(write_signal)
        except (ClientError, BotoCoreError):
            log.warning("could not cancel remotion render", extra={"render_id": render_id})

    async def download(self, result: LambdaRenderResult, target: anyio.Path) -> int:
        """Copy the rendered file to ``target``; returns its size."""

        def fetch() -> None:
            self._s3.download_file(result.bucket, result.key, str(target))

        try:
            await anyio.to_thread.run_sync(fetch)
        except (ClientError, BotoCoreError) as exc:
            raise RenderFailed(
                f"could not fetch the rendered file s3://{result.bucket}/{result.key}: {exc}",
                transient=True,
            ) from exc
        return (await target.stat()).st_size


def _json_default(value: Any) -> Any:
    if hasattr(value, "value"):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _first_error(progress: dict[str, Any]) -> str:
    errors = progress.get("errors") or []
    for error in errors:
        if isinstance(error, dict) and (error.get("isFatal") or not error.get("willRetry")):
            text = error.get("message") or error.get("name") or "unknown error"
            explanation = error.get("explanation")
            return f"{text} ({explanation})" if explanation else str(text)
    return "fatal error"


def _result(render_id: str, bucket: str, progress: dict[str, Any]) -> LambdaRenderResult:
    out_bucket = progress.get("outBucket") or bucket
    out_key = progress.get("outKey")
    url = progress.get("outputFile")
    if not out_key or not url:
        raise RenderFailed(f"Remotion render {render_id} finished without an output file")
    costs = progress.get("costs") or {}
    billed = progress.get("estimatedBillingDurationInMilliseconds")
    return LambdaRenderResult(
        render_id=render_id,
        bucket=str(out_bucket),
        key=str(out_key),
        url=str(url),
        size_bytes=progress.get("outputSizeInBytes"),
        cost_usd=float(costs.get("accruedSoFar") or 0.0),
        billed_ms=int(billed) if isinstance(billed, int | float) and billed > 0 else 0,
    )

"""The Remotion Lambda renderer against a local fake of the Lambda invoke API and moto's S3."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import boto3
import pytest

from crdt import timeline as tl
from render.errors import BackendMisconfigured, RenderCancelled, RenderFailed
from render.progress import RenderProgress
from render.remotion_lambda import (
    CLIENT_VERSION,
    RemotionLambdaConfig,
    RemotionLambdaRenderer,
    parse_invoke_payload,
)
from render.spec import RenderOptions, RenderSpec, build_spec
from tests.support.fake_remotion import BUCKET, FUNCTION, REGION, FakeRemotion, fake_remotion
from tests.support.fake_remotion import moto_s3 as moto_s3_server


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def fake(moto_s3: str) -> Iterator[FakeRemotion]:
    with fake_remotion(moto_s3) as running:
        yield running


def _session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)


def _renderer(fake: FakeRemotion, **overrides: Any) -> RemotionLambdaRenderer:
    values: dict[str, Any] = {
        "region": REGION,
        "function_name": FUNCTION,
        "serve_url": "https://example.com/sites/flowai/index.html",
        "version": CLIENT_VERSION,
        "endpoint_url": fake.endpoint,
        "s3_endpoint_url": fake.s3_endpoint,
        "poll_interval_s": 0.01,
        "timeout_s": 30,
    }
    values.update(overrides)
    return RemotionLambdaRenderer(RemotionLambdaConfig(**values), session=_session())


def _spec() -> RenderSpec:
    doc = tl.new_project_doc("Clip", fps=30, width=1920, height=1080)
    track = tl.add_track(doc, "video", "V1")
    asset = tl.add_asset(doc, "video", "a", "https://cdn.example.com/a.mp4", duration_ms=5000)
    tl.add_clip(doc, track, "video", start_ms=0, duration_ms=4000, asset=asset)
    return build_spec(tl.read_timeline(doc), RenderOptions(resolution="720p"))


async def test_render_starts_polls_and_reports_cost(fake: FakeRemotion, tmp_path: Path) -> None:
    renderer = _renderer(fake)
    seen: list[RenderProgress] = []

    async def on_progress(progress: RenderProgress) -> None:
        seen.append(progress)

    result = await renderer.render(_spec(), on_progress)

    assert result.bucket == BUCKET and result.key == f"renders/{result.render_id}/out.mp4"
    assert result.billed_ms == 45_678 and result.render_seconds == 46
    assert result.cost_usd == pytest.approx(0.0123)
    assert [p.stage for p in seen][:3] == ["starting", "starting", "rendering"]
    assert seen[-1] == RenderProgress(1.0, "done")
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)

    # The payloads are the official client's: version, codec, forced size and inline props.
    info, start, *statuses = fake.invocations
    assert info == {"type": "info", "logLevel": "info"}
    assert start["type"] == "start" and start["version"] == CLIENT_VERSION
    assert start["codec"] == "h264" and start["composition"] == "Timeline"
    assert (start["forceWidth"], start["forceHeight"], start["forceFps"]) == (1280, 720, 30)
    assert start["forceDurationInFrames"] == 120 and start["enableCancellation"] is True
    assert start["serveUrl"] == "https://example.com/sites/flowai/index.html"
    props = json.loads(start["inputProps"]["payload"])
    assert props["visuals"][0]["src"] == "https://cdn.example.com/a.mp4"
    assert statuses[0]["type"] == "status" and statuses[0]["renderId"] == result.render_id

    target = anyio.Path(tmp_path / "out.mp4")
    assert await renderer.download(result, target) == len(b"not a video")


async def test_version_is_checked_once_before_the_first_render(fake: FakeRemotion) -> None:
    renderer = _renderer(fake)
    await renderer.render(_spec())
    await renderer.render(_spec())
    assert [i["type"] for i in fake.invocations].count("info") == 1


async def test_deployed_version_mismatch_fails_before_starting(fake: FakeRemotion) -> None:
    fake.version = "4.0.1"
    with pytest.raises(BackendMisconfigured, match=r"has version 4\.0\.1"):
        await _renderer(fake).render(_spec())
    assert [i["type"] for i in fake.invocations] == ["info"]


def test_setting_must_match_the_installed_client(fake: FakeRemotion) -> None:
    with pytest.raises(BackendMisconfigured, match="installed remotion-lambda client"):
        _renderer(fake, version="4.0.1")


async def test_function_side_version_error_is_a_configuration_error(fake: FakeRemotion) -> None:
    renderer = _renderer(fake)
    await renderer.check_version()
    fake.version = "4.0.2"  # redeployed under our feet
    with pytest.raises(BackendMisconfigured, match="Version mismatch"):
        await renderer.render(_spec())


async def test_unknown_function_is_a_configuration_error(fake: FakeRemotion) -> None:
    with pytest.raises(BackendMisconfigured, match="ResourceNotFoundException"):
        await _renderer(fake, function_name="nope").render(_spec())


async def test_fatal_render_error_fails_the_render(fake: FakeRemotion) -> None:
    fake.fail_at_step = 2
    with pytest.raises(RenderFailed, match=r"Target closed \(The browser crashed") as info:
        await _renderer(fake).render(_spec())
    assert not info.value.transient


async def test_unreachable_lambda_is_transient(fake: FakeRemotion) -> None:
    renderer = _renderer(fake, endpoint_url="http://127.0.0.1:9", invoke_timeout_s=2)
    with pytest.raises(RenderFailed) as info:
        await renderer.render(_spec())
    assert info.value.transient


async def test_cancel_signals_remotion_and_stops(fake: FakeRemotion) -> None:
    fake.steps = 1000
    renderer = _renderer(fake, poll_interval_s=0.05)
    cancelled = asyncio.Event()
    render_ids: list[str] = []

    async def on_progress(progress: RenderProgress) -> None:
        if progress.stage == "rendering":
            render_ids.extend(fake.polls)
            cancelled.set()

    with pytest.raises(RenderCancelled):
        await renderer.render(_spec(), on_progress, cancelled=cancelled)
    assert fake.cancelled(render_ids[0])


async def test_timeout_is_transient(fake: FakeRemotion) -> None:
    fake.steps = 1000
    with pytest.raises(RenderFailed, match="did not finish") as info:
        await _renderer(fake, timeout_s=0.05).render(_spec())
    assert info.value.transient


async def test_large_props_travel_through_s3(fake: FakeRemotion) -> None:
    doc = tl.new_project_doc("Long", fps=30, width=640, height=360)
    track = tl.add_track(doc, "subtitle", "Subs")
    asset_track = tl.add_track(doc, "video", "V1")
    asset = tl.add_asset(doc, "video", "a", "https://cdn.example.com/a.mp4", duration_ms=600_000)
    tl.add_clip(doc, asset_track, "video", start_ms=0, duration_ms=600_000, asset=asset)
    for n in range(2000):
        tl.add_clip(doc, track, "subtitle", start_ms=n * 300, duration_ms=300, text="x" * 100)
    spec = build_spec(tl.read_timeline(doc), RenderOptions())

    await _renderer(fake, bucket_name=BUCKET).render(spec)

    start = next(i for i in fake.invocations if i["type"] == "start")
    props = start["inputProps"]
    assert props["type"] == "bucket-url" and props["bucketName"] == BUCKET
    stored = fake.s3().get_object(Bucket=BUCKET, Key=f"input-props/{props['hash']}.json")
    assert len(json.loads(stored["Body"].read())["subtitles"][0]["cues"]) == 2000

    with pytest.raises(BackendMisconfigured, match="remotion_bucket_name"):
        await _renderer(fake).render(spec)


def test_parse_streamed_payload() -> None:
    raw = b'{"type":"progress"}{"type":"success","renderId":"a{b}"}'
    assert parse_invoke_payload(raw) == {"type": "success", "renderId": "a{b}"}
    assert parse_invoke_payload(b"") == {}

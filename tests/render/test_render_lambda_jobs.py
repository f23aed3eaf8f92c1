"""Render jobs on Remotion Lambda: a local fake of the invoke API, media and output in moto's S3."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ai.usage import Usage, credits_for
from billing.prices import Meter, PriceTable
from crdt import timeline as tl
from render.errors import BackendMisconfigured
from render.job import PRODUCT
from render.remotion_lambda import CLIENT_VERSION
from server.composition.render import build_render_service
from tests.ai.helpers import balance, grant, timeline, wait_job
from tests.render.conftest import render_settings
from tests.support import media
from tests.support.fake_remotion import FUNCTION, REGION, FakeRemotion, fake_remotion, moto_s3
from tests.support.server import RunningServer, run_server

MEDIA_BUCKET = "flowai-media"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto_s3() as endpoint:
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
        s3.create_bucket(Bucket=MEDIA_BUCKET)
        yield endpoint


@pytest.fixture
def fake(aws: str, tmp_path: Path) -> Iterator[FakeRemotion]:
    output = media.color_video(tmp_path / "lambda-out.mp4", "red", 1)
    with fake_remotion(aws, output_file=output) as running:
        yield running


def _lambda_settings(tmp_path: Path, database_url: str, fake: FakeRemotion, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "render_backend": "remotion_lambda",
        "remotion_region": REGION,
        "remotion_function_name": FUNCTION,
        "remotion_serve_url": "https://example.com/sites/flowai/index.html",
        "remotion_version": CLIENT_VERSION,
        "remotion_lambda_endpoint_url": fake.endpoint,
        "remotion_s3_endpoint_url": fake.s3_endpoint,
        "remotion_poll_interval_s": 0.05,
        "media_s3_bucket": MEDIA_BUCKET,
        "media_s3_endpoint_url": fake.s3_endpoint,
        "media_s3_region": REGION,
    }
    return render_settings(tmp_path, database_url, **{**values, **extra})


@pytest.fixture
async def lambda_server(
    tmp_path: Path, database_url: str, fake: FakeRemotion
) -> AsyncIterator[RunningServer]:
    async with run_server(_lambda_settings(tmp_path, database_url, fake)) as running:
        yield running


async def _project(server: RunningServer, tmp_path: Path) -> str:
    pid = await server.create_project("alice")
    clip = await asyncio.to_thread(media.color_video, tmp_path / "red.mp4", "red", 3)
    ai = server.services.ai
    assert ai is not None
    await ai.media.put_file(f"projects/{pid}/uploads/red.mp4", clip, "video/mp4")

    def change(doc: Any) -> None:
        track = tl.add_track(doc, "video", "V1")
        stored = f"media://projects/{pid}/uploads/red.mp4"
        tl.add_asset(doc, "video", "red", stored, duration_ms=3000, asset_id="red")
        tl.add_asset(doc, "video", "cdn", "https://cdn.example.com/b.mp4", asset_id="cdn")
        tl.add_clip(doc, track, "video", start_ms=0, duration_ms=3000, asset="red")
        tl.add_clip(doc, track, "video", start_ms=3000, duration_ms=1000, asset="cdn")

    await server.services.rooms.edit(pid, change)
    return pid


async def test_lambda_render_captures_the_reported_cost_and_stores_the_output(
    lambda_server: RunningServer, fake: FakeRemotion, tmp_path: Path
) -> None:
    server = lambda_server
    await grant(server, "alice", 1000)
    pid = await _project(server, tmp_path)
    async with server.client("alice") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={"resolution": "720p"})
        assert response.status_code == 202, response.text
        job = await wait_job(http, response.json()["id"])
        doc = await timeline(http, pid)
        after = await balance(http)

    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["backend"] == "remotion_lambda" and result["render_seconds"] == 46
    assert result["provider_cost_usd"] == pytest.approx(0.0123)
    expected = credits_for(PriceTable(), Usage.of(PRODUCT, Meter.RENDER_SECONDS, 46))
    assert job["cost"] == min(expected, job["estimate"])
    assert after["balance"] == 1000 - job["cost"] and after["held"] == 0

    # What the function was asked to render: stored media as a presigned S3 link.
    start = next(i for i in fake.invocations if i["type"] == "start")
    props = json.loads(start["inputProps"]["payload"])
    sources = [v["src"] for v in props["visuals"]]
    assert sources[0].startswith(f"{fake.s3_endpoint}/{MEDIA_BUCKET}/media/projects/{pid}/")
    assert "X-Amz-Signature=" in sources[0]
    assert sources[1] == "https://cdn.example.com/b.mp4"
    assert (start["forceWidth"], start["forceHeight"]) == (1280, 720)

    # The output was copied into media storage and linked from the document.
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=fake.s3_endpoint)
    stored = s3.get_object(Bucket=MEDIA_BUCKET, Key=f"media/{result['key']}")
    assert stored["ContentType"] == "video/mp4"
    assert stored["Body"].read() == (tmp_path / "lambda-out.mp4").read_bytes()
    asset = next(a for a in doc["assets"] if a["id"] == result["asset_id"])
    assert asset["origin"] == "render" and asset["uri"] == f"media://{result['key']}"


async def test_lambda_failure_is_mapped_and_refunded(
    lambda_server: RunningServer, fake: FakeRemotion, tmp_path: Path
) -> None:
    server = lambda_server
    await grant(server, "alice", 1000)
    pid = await _project(server, tmp_path)
    fake.fail_at_step = 2
    async with server.client("alice") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={})
        job = await wait_job(http, response.json()["id"])
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}

    assert job["status"] == "failed" and job["error"]["code"] == "render_failed"
    assert "The browser crashed" in job["error"]["message"]
    render_id = next(iter(fake.polls))
    assert fake.cancelled(render_id)  # the functions were told to stop


async def test_deployed_version_mismatch_fails_before_rendering(
    lambda_server: RunningServer, fake: FakeRemotion, tmp_path: Path
) -> None:
    server = lambda_server
    await grant(server, "alice", 1000)
    pid = await _project(server, tmp_path)
    fake.version = "4.0.1"
    async with server.client("alice") as http:
        response = await http.post(f"/api/projects/{pid}/render", json={})
        job = await wait_job(http, response.json()["id"])
        assert await balance(http) == {"balance": 1000, "held": 0, "available": 1000}

    assert job["status"] == "failed"
    assert job["error"]["code"] == "render_backend_misconfigured"
    assert "has version 4.0.1" in job["error"]["message"]
    assert [i["type"] for i in fake.invocations] == ["info"]


def test_the_server_refuses_to_start_misconfigured(tmp_path: Path, fake: FakeRemotion) -> None:
    settings = _lambda_settings(tmp_path, "postgresql://unused", fake, remotion_version="4.0.1")
    with pytest.raises(BackendMisconfigured, match="installed remotion-lambda client"):
        build_render_service(settings)
    settings = _lambda_settings(tmp_path, "postgresql://unused", fake, remotion_serve_url=None)
    with pytest.raises(BackendMisconfigured, match="FLOWAI_REMOTION_SERVE_URL"):
        build_render_service(settings)

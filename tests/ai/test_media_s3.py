"""Media on S3 (moto's server standing in for S3): uploads, job outputs and presigned links."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.ai.helpers import ai_settings, grant, timeline, upload, wait_job
from tests.support.fake_providers import FakeProviders, tiny_png
from tests.support.server import run_server

BUCKET = "flowai-media-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        server.stop()


async def test_media_lives_in_s3_and_clients_get_presigned_links(
    tmp_path: Path, database_url: str, fake: FakeProviders, s3: str, test_clip: Path
) -> None:
    settings = ai_settings(
        tmp_path,
        database_url,
        fake,
        media_s3_bucket=BUCKET,
        media_s3_prefix="media",
        media_s3_endpoint_url=s3,
        media_s3_region="us-east-1",
    )
    async with run_server(settings) as server:
        await grant(server, "alice", 1000)
        pid = await server.create_project("alice")
        async with server.client("alice") as http:
            asset = await upload(http, pid, test_clip)
            subs = await http.post(
                f"/api/projects/{pid}/ai/subtitles", json={"asset_id": asset["id"]}
            )
            thumb = await http.post(f"/api/projects/{pid}/ai/thumbnail", json={"prompt": "a"})
            sub_job = await wait_job(http, subs.json()["id"])
            thumb_job = await wait_job(http, thumb.json()["id"])
            assert sub_job["status"] == thumb_job["status"] == "succeeded"
            doc = await timeline(http, pid)
            link = await http.get(f"/api/projects/{pid}/assets/{asset['id']}/url")
            thumb_link = await http.get(
                f"/api/projects/{pid}/assets/{thumb_job['result']['asset_id']}/url"
            )
    assert len([c for c in doc["clips"] if c["track"] == sub_job["result"]["track_id"]]) == 6
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3, region_name="us-east-1").list_objects_v2(
            Bucket=BUCKET
        )["Contents"]
    }
    assert f"media/projects/{pid}/uploads/{asset['id']}.mp4" in keys
    assert f"media/projects/{pid}/ai/{thumb_job['id']}/thumbnail.png" in keys
    url = link.json()["url"]
    assert url.startswith(s3) and "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(url)).content == test_clip.read_bytes()
        assert (await plain.get(thumb_link.json()["url"])).content == tiny_png()

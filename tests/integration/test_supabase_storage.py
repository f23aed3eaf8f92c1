"""Media on an S3-compatible store addressed the way Supabase Storage needs: path-style, its
own region and access keys (moto's server standing in for the store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pydantic
import pytest
from moto.server import ThreadedMotoServer

from ai.media import S3ClientOptions, S3MediaStore, s3_client
from tests.conftest import make_settings
from tests.support.fake_providers import tiny_png
from tests.support.server import run_server

BUCKET = "flowai-supabase-storage"
REGION = "eu-west-2"
KEYS = {"access_key_id": "supabase-access-key", "secret_access_key": "supabase-secret"}


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """moto's S3 at ``http://localhost:PORT``: a host name, so virtual addressing is possible.
    boto3's own credential chain is emptied: only the configured keys can sign."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    url = f"http://localhost:{port}"
    httpx.post(f"{url}/moto-api/reset").raise_for_status()  # moto's state is per process
    s3_client(S3ClientOptions(url, REGION, "path", **KEYS)).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    try:
        yield url
    finally:
        server.stop()


async def test_path_style_carries_the_bucket_in_every_request_path(
    endpoint: str, tmp_path: Path
) -> None:
    client = s3_client(S3ClientOptions(endpoint, REGION, "path", **KEYS))
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    store = S3MediaStore(client, bucket=BUCKET, prefix="media")
    await store.put_bytes("projects/p/a.png", tiny_png(), "image/png")
    await store.get_file("projects/p/a.png", tmp_path / "back.png")
    link = await store.url("projects/p/a.png", ttl_s=600)
    await store.delete("projects/p/a.png")
    assert (tmp_path / "back.png").read_bytes() == tiny_png()
    assert len(sent) >= 3
    for url in [*sent, link]:
        parts = urlsplit(url)
        assert parts.netloc == urlsplit(endpoint).netloc, url
        assert parts.path.startswith(f"/{BUCKET}/"), url
    assert f"%2F{REGION}%2Fs3%2Faws4_request" in link  # signed for the configured region


async def test_virtual_style_carries_the_bucket_in_the_host(endpoint: str) -> None:
    client = s3_client(S3ClientOptions(endpoint, REGION, "virtual", **KEYS))
    link = await S3MediaStore(client, bucket=BUCKET).url("projects/p/a.png", ttl_s=600)
    parts = urlsplit(link)
    assert parts.hostname == f"{BUCKET}.localhost" and parts.path == "/projects/p/a.png"


async def test_a_supabase_endpoint_keeps_its_path_prefix() -> None:
    """Presigning makes no request, so the real endpoint's shape can be checked offline."""
    endpoint = "https://abcdefghijklmnop.supabase.co/storage/v1/s3"
    client = s3_client(S3ClientOptions(endpoint, REGION, "path", **KEYS))
    link = await S3MediaStore(client, bucket=BUCKET, prefix="media").url(
        "projects/p/a.png", ttl_s=60
    )
    parts = urlsplit(link)
    assert parts.netloc == "abcdefghijklmnop.supabase.co"
    assert parts.path == f"/storage/v1/s3/{BUCKET}/media/projects/p/a.png"
    assert "X-Amz-Signature=" in link and "supabase-access-key" in link


def test_access_keys_go_together(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="FLOWAI_MEDIA_S3_SECRET_ACCESS_KEY"):
        make_settings(tmp_path, media_s3_access_key_id="only-the-id")
    with pytest.raises(ValueError, match="together"):
        s3_client(S3ClientOptions(secret_access_key="only-the-secret"))


async def test_the_server_stores_media_through_path_style_with_its_own_keys(
    endpoint: str, tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        media_s3_bucket=BUCKET,
        media_s3_prefix="media",
        media_s3_endpoint_url=endpoint,
        media_s3_region=REGION,
        media_s3_addressing_style="path",
        media_s3_access_key_id=KEYS["access_key_id"],
        media_s3_secret_access_key=KEYS["secret_access_key"],
    )
    async with run_server(settings) as server:
        pid = await server.create_project("alice")
        async with server.client("alice") as http:
            r = await http.post(
                f"/api/projects/{pid}/media",
                files={"file": ("logo.png", tiny_png(), "application/octet-stream")},
            )
            assert r.status_code == 201, r.text
            asset = r.json()["asset"]
            link = (await http.get(f"/api/projects/{pid}/assets/{asset['id']}/url")).json()["url"]
    parts = urlsplit(link)
    assert parts.netloc == urlsplit(endpoint).netloc
    assert parts.path == f"/{BUCKET}/media/projects/{pid}/uploads/{asset['id']}.png"
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(link)).content == tiny_png()
    listing = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
    ).list_objects_v2(Bucket=BUCKET)
    assert [o["Key"] for o in listing["Contents"]] == [parts.path.removeprefix(f"/{BUCKET}/")]

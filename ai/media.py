"""Media storage: S3 through boto3, or a local directory, behind one ``MediaStore`` port.

Objects are addressed by key (``projects/<project id>/...``); the timeline stores
``media://<key>`` URIs, never expiring links, and clients ask for a time-limited URL when they
need the bytes: an S3 presigned URL, or for the local store a link to the app's ``/media``
route signed with HMAC-SHA256 (key and expiry), checked in constant time.

boto3 is blocking, so every S3 call runs in a worker thread (``anyio.to_thread``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import quote

import anyio
from botocore.exceptions import ClientError

from ai.errors import MediaNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MEDIA_SCHEME",
    "LocalMediaStore",
    "S3ClientOptions",
    "S3MediaStore",
    "check_key",
    "key_of",
    "media_uri",
    "s3_client",
]

MEDIA_SCHEME: Final = "media://"
KEY_LENGTH_MAX: Final = 512
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*$")


def check_key(key: str) -> str:
    """``key`` when it is a safe object key: no empty, ``.`` or ``..`` segments."""
    if len(key) > KEY_LENGTH_MAX or not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid media key {key[:80]!r}")
    return key


def media_uri(key: str) -> str:
    return MEDIA_SCHEME + check_key(key)


def key_of(uri: str) -> str | None:
    """The key of a ``media://`` URI, or None for any other (or malformed) URI."""
    if not uri.startswith(MEDIA_SCHEME):
        return None
    try:
        return check_key(uri[len(MEDIA_SCHEME) :])
    except ValueError:
        return None


class LocalMediaStore:
    """Files under ``root``; served by the app at ``/media/<key>?exp=&sig=``."""

    def __init__(
        self,
        root: Path,
        *,
        secret: bytes,
        url_prefix: str = "/media",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root.resolve()
        self._secret = secret
        self._url_prefix = url_prefix.rstrip("/")
        self._clock = clock

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, write: Callable[[Path], None]) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            write(partial)
            os.replace(partial, target)  # Readers never see a half-written file.
        finally:
            partial.unlink(missing_ok=True)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._write, key, lambda p: shutil.copyfile(path, p))

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._write, key, lambda p: p.write_bytes(data))

    async def get_file(self, key: str, path: Path) -> None:
        source = self.path_for(key)
        if not source.is_file():
            raise MediaNotFound(f"no media object {key!r}")
        await anyio.to_thread.run_sync(shutil.copyfile, source, path)

    def _signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def url(self, key: str, *, ttl_s: int) -> str:
        expires = int(self._clock()) + ttl_s
        signature = self._signature(check_key(key), expires)
        return f"{self._url_prefix}/{quote(key)}?exp={expires}&sig={signature}"

    def verify(self, key: str, expires: int, signature: str) -> bool:
        """Whether a ``url`` link for ``key`` is genuine and not expired."""
        if expires < self._clock():
            return False
        return hmac.compare_digest(self._signature(key, expires), signature)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.path_for(key).unlink(missing_ok=True))


@dataclass(frozen=True, slots=True)
class S3ClientOptions:
    """Where and how to reach an S3-compatible store (AWS, Supabase Storage, MinIO, R2).

    ``addressing_style``: ``path`` puts the bucket in the URL's path (``endpoint/bucket/key``),
    which stores on one host under a path prefix need (Supabase's ``/storage/v1/s3``);
    ``virtual`` puts it in the host name (``bucket.endpoint``); ``auto`` lets botocore choose.
    Keys left unset come from boto3's usual chain (``AWS_*`` variables, profiles, roles).
    """

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    access_key_id: str | None = None
    secret_access_key: str | None = None


def s3_client(options: S3ClientOptions) -> S3Client:
    import boto3
    from botocore.config import Config

    if (options.access_key_id is None) != (options.secret_access_key is None):
        raise ValueError("an S3 access key id and its secret are set together or not at all")
    return boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": options.addressing_style},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


class S3MediaStore:
    """Objects in ``bucket`` under ``prefix``; clients get presigned GET URLs."""

    def __init__(self, client: S3Client, *, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._client.upload_file(
                str(path), self._bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._client.put_object(
                Bucket=self._bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        )

    async def get_file(self, key: str, path: Path) -> None:
        try:
            await anyio.to_thread.run_sync(
                lambda: self._client.download_file(self._bucket, self._key(key), str(path))
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise MediaNotFound(f"no media object {key!r}") from exc
            raise

    async def url(self, key: str, *, ttl_s: int) -> str:
        url: str = await anyio.to_thread.run_sync(
            lambda: self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._bucket, "Key": self._key(key)},
                ExpiresIn=ttl_s,
            )
        )
        return url

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._client.delete_object(Bucket=self._bucket, Key=self._key(key))
        )

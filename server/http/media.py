"""Media routes: upload a file into a project (it becomes an asset of the live timeline), get
a time-limited URL for an asset, and serve the local media store's signed links."""

from __future__ import annotations

import mimetypes
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from ai import audio
from ai.errors import InvalidInput
from ai.media import check_key, key_of, media_uri
from ai.sniff import sniff
from ai.text_safety import clean_text
from crdt.timeline import AssetKind, add_asset, read_timeline
from persistence.projects import Role
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import UPLOAD_BODY_BYTES_CEILING, ApiError
from server.http.job_routes import rate_limit
from server.http.jobs import ai_services
from server.http.projects import require_role
from server.http.schemas import COMMON, errors

router = APIRouter(tags=["media"])

ASSET_NAME_CHARS_MAX = 200
_CHUNK_BYTES = 1024 * 1024


_FORM_FIELDS_MAX = 8
_FORM_FIELD_BYTES_MAX = 64 * 1024
# Multipart framing around the files themselves.
_FORM_OVERHEAD_BYTES = 64 * 1024


def multipart_schema(files: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    properties = {**fields, **files}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": list(files)}
                }
            },
        }
    }


@asynccontextmanager
async def bounded_form(
    request: Request, bytes_max: int, *, files_max: int
) -> AsyncIterator[FormData]:
    """The request's multipart form (``async with``), refused before it is read when it
    declares more than ``bytes_max``: the declared length bounds what the server reads."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise ApiError(411, "length_required", "uploads need a Content-Length header")
    if int(declared) > bytes_max + _FORM_OVERHEAD_BYTES:
        raise ApiError(413, "body_too_large", f"uploads are limited to {bytes_max} bytes")
    form = await request.form(
        max_files=files_max, max_fields=_FORM_FIELDS_MAX, max_part_size=_FORM_FIELD_BYTES_MAX
    )
    try:
        yield form
    finally:
        await form.close()


def form_text(form: FormData, name: str, chars_max: int) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > chars_max:
        raise ApiError(422, "invalid_request", f"{name}: a text of at most {chars_max} characters")
    return value


def form_files(form: FormData, name: str) -> list[UploadFile]:
    return [f for f in form.getlist(name) if isinstance(f, UploadFile)]


async def save_upload(upload: UploadFile, path: Path, bytes_max: int) -> int:
    """Copy an upload to ``path``; 413 past ``bytes_max``."""
    size = 0
    async with await anyio.open_file(path, "wb") as out:
        while chunk := await upload.read(_CHUNK_BYTES):
            size += len(chunk)
            if size > bytes_max:
                raise ApiError(413, "body_too_large", f"a file is larger than {bytes_max} bytes")
            await out.write(chunk)
    return size


class UploadedAsset(BaseModel):
    id: str
    kind: AssetKind
    name: str
    uri: str = Field(description="media://<key>: get a link from .../assets/{id}/url")
    duration_ms: int | None
    content_type: str
    bytes: int


class UploadOut(BaseModel):
    asset: UploadedAsset


class AssetUrlOut(BaseModel):
    url: str = Field(description="Absolute; works cross-origin with Range requests (seeking).")
    expires_in: int = Field(description="Seconds the link stays valid.")


def absolute_url(url: str, request: Request, public_url: str | None) -> str:
    """``url`` as clients reach it: paths of this server get FLOWAI_PUBLIC_URL, or else the
    request's own scheme and host (with uvicorn's proxy headers applied to the scheme)."""
    if not url.startswith("/"):
        return url  # already absolute (an S3 presigned URL)
    base = public_url or str(request.base_url)
    return base.rstrip("/") + url


@router.post(
    "/api/projects/{project_id}/media",
    status_code=status.HTTP_201_CREATED,
    max_body_size=UPLOAD_BODY_BYTES_CEILING,  # the route checks FLOWAI_MEDIA_UPLOAD_BYTES_MAX
    openapi_extra=multipart_schema(
        {"file": {"type": "string", "format": "binary"}}, {"name": {"type": "string"}}
    ),
    responses=errors(*COMMON, 403, 404, 411, 415, 429, 503),
)
async def upload_media(
    project_id: uuid.UUID, request: Request, user: CurrentUser, services: ServicesDep
) -> UploadOut:
    """Store an audio, video or image file (form field ``file``, optional ``name``) and add it
    to the timeline's assets. The type is read from the content, never from the name; audio
    and video must decode."""
    ai = ai_services(services)
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    await rate_limit(ai, user.user_id, "uploads")
    limit = ai.media_upload_bytes_max
    async with bounded_form(request, limit, files_max=1) as form:
        uploads = form_files(form, "file")
        if len(uploads) != 1:
            raise ApiError(422, "invalid_request", "send one file in the form field 'file'")
        file = uploads[0]
        name = form_text(form, "name", ASSET_NAME_CHARS_MAX)
        with tempfile.TemporaryDirectory(prefix="flowai-upload-") as tmp:
            path = Path(tmp) / "upload"
            size = await save_upload(file, path, limit)
            with path.open("rb") as f:
                kind = sniff(f.read(32))
            if kind is None:
                raise ApiError(
                    415, "unsupported_media", "not an audio, video or image file we accept"
                )
            duration_ms = None
            asset_kind = AssetKind(kind.kind)
            if kind.kind != "image":
                try:
                    info = await audio.probe(path)
                except InvalidInput as exc:
                    raise ApiError(422, exc.code, exc.message) from exc
                if not (info.has_audio or info.has_video) or not info.duration_ms:
                    raise ApiError(422, "media_undecodable", "the file has no playable stream")
                duration_ms = info.duration_ms
                asset_kind = AssetKind.VIDEO if info.has_video else AssetKind.AUDIO
            asset_id = uuid.uuid4().hex
            key = f"projects/{project_id}/uploads/{asset_id}.{kind.extension}"
            await ai.media.put_file(key, path, kind.mime)
    display = clean_text(name or file.filename or "")[:ASSET_NAME_CHARS_MAX] or asset_id
    uri = media_uri(key)
    await services.rooms.edit(
        str(project_id),
        lambda doc: add_asset(
            doc, asset_kind, display, uri, duration_ms=duration_ms, asset_id=asset_id
        ),
    )
    asset = UploadedAsset(
        id=asset_id,
        kind=asset_kind,
        name=display,
        uri=uri,
        duration_ms=duration_ms,
        content_type=kind.mime,
        bytes=size,
    )
    return UploadOut(asset=asset)


@router.get(
    "/api/projects/{project_id}/assets/{asset_id}/url", responses=errors(401, 404, 422, 503)
)
async def asset_url(
    project_id: uuid.UUID,
    asset_id: str,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
) -> AssetUrlOut:
    """A time-limited, absolute URL to fetch an asset stored by this service."""
    ai = ai_services(services)
    await require_role(services, project_id, user.user_id)
    async with services.rooms.hold(str(project_id)) as live:
        asset = read_timeline(live.room.doc).asset(asset_id)
    key = key_of(asset.uri) if asset is not None else None
    # Only this project's own media: an asset's URI is whatever a collaborator wrote.
    if key is None or not key.startswith(f"projects/{project_id}/"):
        raise ApiError(404, "asset_not_found", "no media stored for this asset")
    ttl_s = ai.media_url_ttl_s
    url = absolute_url(await ai.media.url(key, ttl_s=ttl_s), request, services.settings.public_url)
    return AssetUrlOut(url=url, expires_in=ttl_s)


@router.get("/media/{key:path}", include_in_schema=False)
async def serve_media(key: str, exp: int, sig: str, services: ServicesDep) -> FileResponse:
    """The local media store's signed links (S3 serves its presigned URLs itself). Range
    requests are answered with 206 Partial Content, so a <video> can seek."""
    ai = ai_services(services)
    store = ai.local_media
    try:
        check_key(key)
    except ValueError as exc:
        raise ApiError(404, "not_found", "no such media") from exc
    if store is None or not store.verify(key, exp, sig):
        raise ApiError(403, "forbidden", "the link is invalid or has expired")
    path = store.path_for(key)
    if not path.is_file():
        raise ApiError(404, "not_found", "no such media")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type)

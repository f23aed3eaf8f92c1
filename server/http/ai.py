"""REST routes of the AI operations. Each request is validated, rate-limited, priced and
held, then queued as a job (``202`` with the job); results land in the project's live
document. Subtitle export and voice clones live here too."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from ai import audio
from ai.errors import InvalidInput
from ai.languages import LANGUAGES
from ai.operations import content, dubbing, subtitles, thumbnail, voices
from ai.operations.common import Source, resolve_source
from ai.sniff import sniff
from ai.subtitles_format import Cue, to_srt, to_vtt
from ai.text_safety import require_text
from crdt.timeline import Timeline, TrackKind, read_timeline
from persistence.projects import Role
from server.composition.ai import AiServices
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import UPLOAD_BODY_BYTES_CEILING, ApiError
from server.http.job_routes import JOB_RESPONSES, accepted, client_errors, rate_limit, submit
from server.http.jobs import ai_services
from server.http.media import (
    bounded_form,
    form_files,
    form_text,
    multipart_schema,
    save_upload,
)
from server.http.projects import require_role
from server.http.schemas import errors

router = APIRouter(tags=["ai"])

NAME_CHARS_MAX = 100
DESCRIPTION_CHARS_MAX = 500
_LANGUAGE_PATTERN = "^(" + "|".join(sorted(LANGUAGES)) + ")$"
Language = Annotated[str, Field(pattern=_LANGUAGE_PATTERN)]


class ContentIn(BaseModel):
    kind: content.ContentKind
    brief: str = Field(min_length=1, max_length=20_000)
    language: Language | None = None
    project_id: uuid.UUID | None = None


class SourceIn(BaseModel):
    clip_id: str | None = Field(default=None, min_length=1, max_length=200)
    asset_id: str | None = Field(default=None, min_length=1, max_length=200)


class SubtitlesIn(SourceIn):
    language: Language | None = None


class DubbingIn(SourceIn):
    target_language: Language
    source_language: Language | None = None
    # A stock ElevenLabs voice, or one of the caller's clones; neither: the default voice.
    voice_id: str | None = Field(default=None, pattern="^[A-Za-z0-9]{1,64}$")
    voice_clone_id: uuid.UUID | None = None


class ThumbnailIn(BaseModel):
    prompt: str = Field(min_length=1, max_length=20_000)


# -- shared -----------------------------------------------------------------------------------


async def _timeline(services: Services, project_id: uuid.UUID) -> Timeline:
    async with services.rooms.hold(str(project_id)) as live:
        return read_timeline(live.room.doc)


# -- operations -------------------------------------------------------------------------------


@router.post(
    "/api/ai/content",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={**JOB_RESPONSES, **errors(404)},
)
async def create_content(body: ContentIn, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Titles, a description or a script from a brief (the result is in the job)."""
    ai = ai_services(services)
    title = None
    if body.project_id is not None:
        project, _ = await require_role(services, body.project_id, user.user_id)
        title = project.title
    async with client_errors():
        brief = require_text(body.brief, field="brief", max_chars=ai.limits.prompt_chars_max)
        request = content.build_request(body.kind, brief, title=title, language=body.language)
        estimate = content.estimate(ai.providers, request)
    job_input = {"kind": body.kind.value, "brief": brief, "language": body.language}
    if title is not None:
        job_input["title"] = title
    return await submit(
        ai,
        kind=content.KIND,
        user_id=user.user_id,
        project_id=body.project_id,
        operation="content",
        job_input=job_input,
        estimate=estimate,
    )


async def _source(
    services: Services, ai: AiServices, project_id: uuid.UUID, body: SourceIn
) -> Source:
    timeline = await _timeline(services, project_id)
    async with client_errors():
        return resolve_source(
            timeline, project_id, clip_id=body.clip_id, asset_id=body.asset_id, limits=ai.limits
        )


@router.post(
    "/api/projects/{project_id}/ai/subtitles",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={**JOB_RESPONSES, **errors(403, 404)},
)
async def create_subtitles(
    project_id: uuid.UUID, body: SubtitlesIn, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Transcribe a clip or an asset into a new subtitle track."""
    ai = ai_services(services)
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    source = await _source(services, ai, project_id, body)
    async with client_errors():
        estimate = subtitles.estimate(ai.providers, source)
    return await submit(
        ai,
        kind=subtitles.KIND,
        user_id=user.user_id,
        project_id=project_id,
        operation="subtitles",
        job_input={"source": source.to_json(), "language": body.language},
        estimate=estimate,
    )


@router.post(
    "/api/projects/{project_id}/ai/dubbing",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={**JOB_RESPONSES, **errors(403, 404)},
)
async def create_dubbing(
    project_id: uuid.UUID, body: DubbingIn, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Dub a clip or an asset into another language, as a new audio track."""
    ai = ai_services(services)
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    if body.voice_id is not None and body.voice_clone_id is not None:
        raise ApiError(422, "invalid_voice", "give voice_id or voice_clone_id, not both")
    source = await _source(services, ai, project_id, body)
    async with client_errors():
        speech = ai.providers.need_speech()
        estimate = dubbing.estimate(ai.providers, source, ai.limits)
    provider_voice_id = body.voice_id or speech.default_voice_id
    if body.voice_clone_id is not None:
        clone = await ai.voice_store.get_for(user.user_id, body.voice_clone_id)
        if clone is None:
            raise ApiError(404, "voice_not_found", "no such voice clone")
        provider_voice_id = clone.provider_voice_id
    job_input = {
        "source": source.to_json(),
        "target_language": body.target_language,
        "source_language": body.source_language,
        "provider_voice_id": provider_voice_id,
        "voice_clone_id": str(body.voice_clone_id) if body.voice_clone_id else None,
    }
    return await submit(
        ai,
        kind=dubbing.KIND,
        user_id=user.user_id,
        project_id=project_id,
        operation="dubbing",
        job_input=job_input,
        estimate=estimate,
    )


@router.post(
    "/api/projects/{project_id}/ai/thumbnail",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={**JOB_RESPONSES, **errors(403, 404)},
)
async def create_thumbnail(
    project_id: uuid.UUID, body: ThumbnailIn, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Generate a thumbnail image; it becomes an asset and the project's thumbnail."""
    ai = ai_services(services)
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    timeline = await _timeline(services, project_id)
    async with client_errors():
        prompt = require_text(body.prompt, field="prompt", max_chars=ai.limits.prompt_chars_max)
        estimate = thumbnail.estimate(ai.providers)
    return await submit(
        ai,
        kind=thumbnail.KIND,
        user_id=user.user_id,
        project_id=project_id,
        operation="thumbnail",
        job_input={"prompt": prompt, "title": timeline.project.title},
        estimate=estimate,
    )


# -- subtitle export ------------------------------------------------------------------------


_SUBTITLE_FILES = {
    200: {
        "description": "The track as SubRip or WebVTT",
        "content": {
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
        },
    },
    **errors(401, 404, 422),
}


@router.get(
    "/api/projects/{project_id}/subtitles/{track_file}",
    response_class=Response,  # no default media type: the errors are documented as JSON
    responses=_SUBTITLE_FILES,
)
async def export_subtitles(
    project_id: uuid.UUID, track_file: str, user: CurrentUser, services: ServicesDep
) -> PlainTextResponse:
    """A subtitle track as SubRip (``<track_id>.srt``) or WebVTT (``<track_id>.vtt``)."""
    await require_role(services, project_id, user.user_id)
    track_id, _, extension = track_file.rpartition(".")
    if extension not in ("srt", "vtt") or not track_id:
        raise ApiError(404, "not_found", "ask for <track_id>.srt or <track_id>.vtt")
    timeline = await _timeline(services, project_id)
    track = timeline.track(track_id)
    if track is None or track.kind is not TrackKind.SUBTITLE:
        raise ApiError(404, "track_not_found", "no such subtitle track")
    cues = [Cue(c.start_ms, c.end_ms, c.text or "") for c in timeline.clips_on(track_id) if c.text]
    if extension == "srt":
        return PlainTextResponse(to_srt(cues), media_type="application/x-subrip")
    return PlainTextResponse(to_vtt(cues), media_type="text/vtt")


# -- voices -----------------------------------------------------------------------------------


async def _save_sample(
    ai: AiServices, upload: UploadFile, key_prefix: str, index: int, workdir: Path
) -> tuple[str, int]:
    """Store one sample, checked by content; returns its key and duration."""
    path = workdir / f"sample-{index}"
    await save_upload(upload, path, ai.limits.voice_sample_bytes_max)
    with path.open("rb") as f:
        kind = sniff(f.read(32))
    if kind is None or kind.kind != "audio":
        raise InvalidInput("samples must be audio (MP3, WAV, OGG, FLAC or M4A)", code="bad_media")
    info = await audio.probe(path)
    if not info.has_audio or (info.duration_ms or 0) < ai.limits.voice_sample_ms_min:
        raise InvalidInput("a sample has no audio or is too short", code="bad_media")
    key = f"{key_prefix}/sample-{index}.{kind.extension}"
    await ai.media.put_file(key, path, kind.mime)
    return key, info.duration_ms or 0


_VOICE_FORM = {
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
}
_VOICE_FIELDS = {"name": {"type": "string"}, "description": {"type": "string"}}


@router.post(
    "/api/voices",
    status_code=status.HTTP_202_ACCEPTED,
    max_body_size=UPLOAD_BODY_BYTES_CEILING,  # the route checks its own upload limit
    tags=["voices"],
    openapi_extra=multipart_schema(_VOICE_FORM, _VOICE_FIELDS),
    response_model=None,
    responses={**JOB_RESPONSES, **errors(411)},
)
async def create_voice(request: Request, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Clone a voice (ElevenLabs instant voice cloning) from audio samples: form fields
    ``name``, optional ``description``, and one to five ``files``."""
    ai = ai_services(services)
    limits = ai.limits
    async with client_errors():
        estimate = voices.estimate(ai.providers)
    bytes_max = limits.voice_samples_max * limits.voice_sample_bytes_max
    async with bounded_form(request, bytes_max, files_max=limits.voice_samples_max) as form:
        files = form_files(form, "files")
        name = form_text(form, "name", NAME_CHARS_MAX) or ""
        description = form_text(form, "description", DESCRIPTION_CHARS_MAX)
        if not 1 <= len(files) <= limits.voice_samples_max:
            raise ApiError(422, "invalid_samples", f"send 1 to {limits.voice_samples_max} samples")
        job_id = uuid.uuid4()
        async with client_errors():
            clean_name = require_text(name, field="name", max_chars=NAME_CHARS_MAX)
            clean_description = (
                require_text(description, field="description", max_chars=DESCRIPTION_CHARS_MAX)
                if description and description.strip()
                else None
            )
            await rate_limit(ai, user.user_id, "voices")
            keys: list[str] = []
            try:
                total_ms = 0
                with tempfile.TemporaryDirectory(prefix="flowai-upload-") as tmp:
                    for i, upload in enumerate(files):
                        key, ms = await _save_sample(ai, upload, f"voices/{job_id}", i, Path(tmp))
                        keys.append(key)
                        total_ms += ms
                if total_ms > limits.voice_total_ms_max:
                    raise InvalidInput("the samples are too long together", code="bad_media")
                record = await ai.jobs.submit(
                    kind=voices.KIND,
                    user_id=user.user_id,
                    project_id=None,
                    input={"name": clean_name, "description": clean_description, "samples": keys},
                    estimate=estimate,
                    job_id=job_id,
                )
            except BaseException:
                for key in keys:  # Nothing will use them.
                    await ai.media.delete(key)
                raise
    return accepted(record)


class VoiceOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    provider: str
    provider_voice_id: str = Field(description="Give as voice_id to dubbing, or use the clone id.")
    sample_count: int
    created_at: str


@router.get("/api/voices", tags=["voices"], responses=errors(401, 503))
async def list_voices(user: CurrentUser, services: ServicesDep) -> list[VoiceOut]:
    """The caller's voice clones, newest first."""
    ai = ai_services(services)
    clones = await ai.voice_store.list_for(user.user_id)
    return [VoiceOut.model_validate(voices.voice_json(v)) for v in clones]


@router.delete(
    "/api/voices/{voice_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["voices"],
    responses=errors(401, 404, 422, 502, 503),
)
async def delete_voice(voice_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    ai = ai_services(services)
    voice = await ai.voice_store.get_for(user.user_id, voice_id)
    if voice is None:
        raise ApiError(404, "voice_not_found", "no such voice clone")
    async with client_errors():
        cloner = ai.providers.need_cloner()
    try:
        await cloner.delete(voice.provider_voice_id)
    except Exception as exc:
        raise ApiError(502, "provider_error", "the provider could not delete the voice") from exc
    await ai.voice_store.delete(user.user_id, voice_id)

"""REST routes for rendering and OpenTimelineIO interchange.

- ``POST /api/projects/{id}/render`` renders the live timeline: the spec is built and checked
  now (``422`` lists every problem with its path), priced and held, then queued as a job
  (``202`` with the job; follow it at ``GET /api/jobs/{id}``).
- ``GET /api/projects/{id}/export.otio`` downloads the timeline as OpenTimelineIO.
- ``POST /api/projects/import.otio`` creates a new project from an ``.otio`` document.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pycrdt import Doc
from pydantic import BaseModel, Field

from crdt.timeline import Timeline, TimelineError, read_timeline
from persistence.projects import Role
from render.errors import InvalidRender
from render.job import KIND, RenderService
from render.otio import OtioImportError, export_otio, parse_otio, write_timeline
from render.spec import OutputFormat, RenderOptions, SubtitleMode
from render.spec_build import build_spec
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import UPLOAD_BODY_BYTES_CEILING, ApiError, error_body
from server.http.job_routes import JOB_RESPONSES, submit
from server.http.jobs import ai_services
from server.http.projects import ProjectOut, mirrored, project_out, require_role
from server.http.schemas import COMMON, InvalidRenderBody, errors

router = APIRouter(tags=["render"])

OTIO_BYTES_MAX = 20 * 1024 * 1024
OTIO_MEDIA_TYPE = "application/vnd.opentimelineio+json"


class RangeIn(BaseModel):
    start_ms: int | None = Field(default=None, ge=0)
    end_ms: int | None = Field(default=None, gt=0)


class RenderIn(BaseModel):
    format: OutputFormat = OutputFormat.MP4
    # ``project``, ``<height>p`` (e.g. ``720p``) or ``<width>x<height>``.
    resolution: str = Field(default="project", min_length=1, max_length=20)
    range: RangeIn | None = None
    subtitles: SubtitleMode = SubtitleMode.BURN


def _render_service(services: Services) -> RenderService:
    render: RenderService | None = getattr(services, "render", None)
    if render is None:
        raise ApiError(503, "render_unavailable", "rendering is not available on this server")
    return render


async def _timeline(services: Services, project_id: uuid.UUID) -> Timeline:
    async with services.rooms.hold(str(project_id)) as live:
        return read_timeline(live.room.doc)


def _invalid(exc: InvalidRender) -> JSONResponse:
    body: dict[str, Any] = error_body(exc.code, exc.message)
    body["error"]["problems"] = [p.to_json() for p in exc.problems]
    return JSONResponse(body, status_code=422)


@router.post(
    "/api/projects/{project_id}/render",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    responses={**JOB_RESPONSES, **errors(403, 404, 422, overrides={422: InvalidRenderBody})},
)
async def create_render(
    project_id: uuid.UUID, body: RenderIn, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Render the timeline (or a range of it) to a video file; the file is added to the
    project's assets when the job succeeds."""
    ai = ai_services(services)
    render = _render_service(services)
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    span = body.range or RangeIn()
    options = RenderOptions(
        format=body.format,
        resolution=body.resolution,
        start_ms=span.start_ms,
        end_ms=span.end_ms,
        subtitles=body.subtitles,
    )
    try:
        spec = build_spec(await _timeline(services, project_id), options)
        render.check(spec, str(project_id))
    except InvalidRender as exc:
        return _invalid(exc)
    job_input = {
        "spec": spec.to_json(),
        "options": body.model_dump(mode="json"),
        "backend": render.backend,
    }
    return await submit(
        ai,
        kind=KIND,
        user_id=user.user_id,
        project_id=project_id,
        operation=None,  # renders are bounded by credits and the render backend's concurrency
        job_input=job_input,
        estimate=render.estimate(spec),
    )


def _filename(title: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._ -]+", "", title).strip()[:80]
    return f"{safe or 'timeline'}.otio"


@router.get(
    "/api/projects/{project_id}/export.otio",
    response_class=Response,
    responses={
        200: {
            "description": "The timeline as an OpenTimelineIO document (a download)",
            "content": {OTIO_MEDIA_TYPE: {"schema": {"type": "object"}}},
        },
        **errors(401, 404, 422),
    },
)
async def export_timeline(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> Response:
    """The timeline as OpenTimelineIO, for desktop editors."""
    project, _ = await require_role(services, project_id, user.user_id)
    text = export_otio(await _timeline(services, project_id))
    disposition = f'attachment; filename="{_filename(project.title)}"'
    return Response(text, media_type=OTIO_MEDIA_TYPE, headers={"Content-Disposition": disposition})


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > OTIO_BYTES_MAX:
            raise ApiError(
                413, "body_too_large", f"an .otio document is at most {OTIO_BYTES_MAX} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class ImportedProjectOut(ProjectOut):
    skipped: list[str] = Field(description="What the timeline could not hold (effects ...).")


_OTIO_BODY = {
    "requestBody": {
        "required": True,
        "description": f"An OpenTimelineIO document (at most {OTIO_BYTES_MAX} bytes, UTF-8).",
        "content": {
            OTIO_MEDIA_TYPE: {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/api/projects/import.otio",
    status_code=status.HTTP_201_CREATED,
    max_body_size=UPLOAD_BODY_BYTES_CEILING,  # the route checks OTIO_BYTES_MAX
    openapi_extra=_OTIO_BODY,
    responses=errors(*COMMON),
)
async def import_timeline(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    title: str | None = Query(default=None, min_length=1, max_length=200),
) -> ImportedProjectOut:
    """Create a project (the caller owns it) from an ``.otio`` document sent as the body.
    What a FlowAI timeline cannot hold (transitions, effects ...) is listed in ``skipped``."""
    raw = await _read_body(request)
    try:
        imported = parse_otio(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_otio", "the document is not UTF-8 text") from exc
    except OtioImportError as exc:
        raise ApiError(422, "invalid_otio", str(exc)) from exc
    imported.title = (title or imported.title).strip()[:200] or "Imported timeline"
    try:
        write_timeline(Doc(), imported)  # a dry run: the project is created only if it fits
    except TimelineError as exc:
        raise ApiError(422, "invalid_otio", f"the timeline cannot be imported: {exc}") from exc
    project = await services.directory.create_project(user.user_id, imported.title)
    await services.rooms.edit(str(project.id), lambda doc: write_timeline(doc, imported))
    out = project_out(await mirrored(services, project.id), Role.OWNER)
    return ImportedProjectOut(**out.model_dump(), skipped=imported.skipped)

"""REST routes for jobs: status, progress, cost and result; cancellation.

Reads run under the caller's identity (row-level security): a user sees their own jobs and
the jobs of projects they are a member of; only the user who started a job can cancel it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ai.ports import JobRecord, JobStatus
from server.composition.ai import AiServices
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import ApiError
from server.http.schemas import errors

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

PAGE_SIZE_MAX = 100


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    status: JobStatus
    stage: str | None
    progress: float
    project_id: uuid.UUID | None
    # Credits: held at submission, and charged once the job succeeded (never above the hold).
    estimate: int
    cost: int | None
    usage: dict[str, Any] | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    cancel_requested: bool
    input: dict[str, Any]
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None


def job_out(record: JobRecord) -> JobOut:
    return JobOut(
        id=record.id,
        kind=record.kind,
        status=record.status,
        stage=record.stage,
        progress=record.progress,
        project_id=record.project_id,
        estimate=record.estimate,
        cost=record.cost,
        usage=record.usage,
        result=record.result,
        error=record.error,
        attempts=record.attempts,
        cancel_requested=record.cancel_requested,
        input=record.input,
        created_at=record.created_at.isoformat(),
        updated_at=record.updated_at.isoformat(),
        started_at=record.started_at.isoformat() if record.started_at else None,
        finished_at=record.finished_at.isoformat() if record.finished_at else None,
    )


def ai_services(services: Services) -> AiServices:
    ai: AiServices | None = getattr(services, "ai", None)
    if ai is None:
        raise ApiError(503, "jobs_unavailable", "jobs are not available on this server")
    return ai


@router.get("/{job_id}", responses=errors(401, 404, 422, 503))
async def get_job(job_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> JobOut:
    record = await ai_services(services).job_store.get_as(user.user_id, job_id)
    if record is None:
        raise ApiError(404, "job_not_found", "no such job")
    return job_out(record)


@router.get("", responses=errors(401, 422, 503))
async def list_jobs(
    user: CurrentUser,
    services: ServicesDep,
    project_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = 50,
) -> list[JobOut]:
    """The caller's jobs and those of their projects' members (``project_id``: one
    project's), newest first."""
    records = await ai_services(services).job_store.list_as(
        user.user_id, project_id=project_id, limit=limit
    )
    return [job_out(r) for r in records]


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "Cancelled"},
        202: {"model": JobOut, "description": "Running: it is being stopped"},
        **errors(401, 403, 404, 409, 422, 503),
    },
)
async def cancel_job(job_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """202 while a running job is being stopped, 200 once it is cancelled."""
    ai = ai_services(services)
    record = await ai.jobs.cancel(job_id, user.user_id)
    if record is None:
        existing = await ai.job_store.get_as(user.user_id, job_id)
        if existing is None:
            raise ApiError(404, "job_not_found", "no such job")
        if existing.user_id != user.user_id:
            raise ApiError(403, "forbidden", "only the user who started a job can cancel it")
        raise ApiError(409, "job_finished", f"the job has already {existing.status.value}")
    code = status.HTTP_200_OK if record.status.final else status.HTTP_202_ACCEPTED
    return JSONResponse(job_out(record).model_dump(mode="json"), status_code=code)

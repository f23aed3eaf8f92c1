"""REST routes for version history: list, create, preview, restore (live)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pycrdt import Doc
from pydantic import BaseModel, Field

from crdt.restore import RESTORE_ORIGIN, restore_to
from crdt.timeline import read_timeline
from persistence.projects import Role
from persistence.versions import VersionInfo, VersionKind
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import ApiError
from server.http.projects import require_role
from server.http.schemas import COMMON, TimelineOut, errors

# doc_versions.version is a PostgreSQL integer: refuse what it cannot hold with a 422.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = APIRouter(prefix="/api/projects/{project_id}/versions", tags=["versions"])


class VersionCreate(BaseModel):
    label: str = Field(min_length=1, max_length=200)


class VersionOut(BaseModel):
    version: int
    kind: VersionKind
    label: str | None
    created_by: str | None
    restored_from: int | None = Field(description="For a restore: the version it restored.")
    size_bytes: int
    created_at: str


class VersionDetail(VersionOut):
    timeline: TimelineOut


class RestoreOut(BaseModel):
    restored_from: int
    restore_point: VersionOut = Field(description="The state the restore replaced.")
    version: VersionOut = Field(description="The state after the restore.")


def _out(info: VersionInfo) -> VersionOut:
    return VersionOut(
        version=info.version,
        kind=info.kind,
        label=info.label,
        created_by=info.created_by,
        restored_from=info.restored_from,
        size_bytes=info.size_bytes,
        created_at=info.created_at.isoformat(),
    )


@router.get("", responses=errors(401, 404, 422))
async def list_versions(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> list[VersionOut]:
    """Every version, newest first."""
    await require_role(services, project_id, user.user_id)
    return [_out(v) for v in await services.versions.list(user.user_id, project_id)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(*COMMON, 403, 404))
async def create_version(
    project_id: uuid.UUID, body: VersionCreate, user: CurrentUser, services: ServicesDep
) -> VersionOut:
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    async with services.rooms.hold(str(project_id)) as live:
        state = live.room.doc.get_update()
    info = await services.versions.create(
        project_id, VersionKind.LABELLED, state, label=body.label, created_by=user.user_id
    )
    return _out(info)


@router.get("/{version}", responses=errors(401, 404, 422))
async def get_version(
    project_id: uuid.UUID, version: VersionNumber, user: CurrentUser, services: ServicesDep
) -> VersionDetail:
    await require_role(services, project_id, user.user_id)
    found = await services.versions.get(user.user_id, project_id, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"no version {version} of this project")
    info, state = found
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    timeline = read_timeline(doc).to_json()
    return VersionDetail.model_validate({**_out(info).model_dump(), "timeline": timeline})


@router.post("/{version}/restore", responses=errors(401, 403, 404, 422))
async def restore_version(
    project_id: uuid.UUID, version: VersionNumber, user: CurrentUser, services: ServicesDep
) -> RestoreOut:
    """Bring the live document back to this version (collaborators converge to it live); the
    state it replaced is kept as a restore point, and the result is a new version."""
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    found = await services.versions.get(user.user_id, project_id, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"no version {version} of this project")
    restore_point, restored = await _restore(services, project_id, found[1], version, user.user_id)
    return RestoreOut(
        restored_from=version, restore_point=_out(restore_point), version=_out(restored)
    )


async def _restore(
    services: Services, project_id: uuid.UUID, state: bytes, version: int, user_id: str
) -> tuple[VersionInfo, VersionInfo]:
    """Save a restore point, apply the difference live, record the result as a version.

    Restores of one project run one at a time (an advisory lock covers other instances), so
    concurrent restores apply in order and each restore point is the state it replaced.
    """
    target: Doc[Any] = Doc()
    target.apply_update(state)
    doc_id = str(project_id)
    async with services.db.pool.acquire() as lock_conn:
        await lock_conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"restore:{doc_id}")
        try:
            async with services.rooms.hold(doc_id) as live:
                point = await services.versions.create(
                    project_id,
                    VersionKind.RESTORE_POINT,
                    live.room.doc.get_update(),
                    created_by=user_id,
                )
                await services.rooms.edit(
                    doc_id, lambda doc: restore_to(doc, target), origin=RESTORE_ORIGIN
                )
                restored = await services.versions.create(
                    project_id,
                    VersionKind.RESTORE,
                    live.room.doc.get_update(),
                    created_by=user_id,
                    restored_from=version,
                )
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"restore:{doc_id}")
    return point, restored

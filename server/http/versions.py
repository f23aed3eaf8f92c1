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

# doc_versions.version is a PostgreSQL integer: refuse what it cannot hold with a 422.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = APIRouter(prefix="/api/projects/{project_id}/versions", tags=["versions"])


class VersionCreate(BaseModel):
    label: str = Field(min_length=1, max_length=200)


def _out(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "kind": info.kind.value,
        "label": info.label,
        "created_by": info.created_by,
        "restored_from": info.restored_from,
        "size_bytes": info.size_bytes,
        "created_at": info.created_at.isoformat(),
    }


@router.get("")
async def list_versions(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> list[dict[str, Any]]:
    await require_role(services, project_id, user.user_id)
    return [_out(v) for v in await services.versions.list(user.user_id, project_id)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_version(
    project_id: uuid.UUID, body: VersionCreate, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    async with services.rooms.hold(str(project_id)) as live:
        state = live.room.doc.get_update()
    info = await services.versions.create(
        project_id, VersionKind.LABELLED, state, label=body.label, created_by=user.user_id
    )
    return _out(info)


@router.get("/{version}")
async def get_version(
    project_id: uuid.UUID, version: VersionNumber, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    await require_role(services, project_id, user.user_id)
    found = await services.versions.get(user.user_id, project_id, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"no version {version} of this project")
    info, state = found
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return {**_out(info), "timeline": read_timeline(doc).to_json()}


@router.post("/{version}/restore")
async def restore_version(
    project_id: uuid.UUID, version: VersionNumber, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    found = await services.versions.get(user.user_id, project_id, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"no version {version} of this project")
    restore_point, restored = await _restore(services, project_id, found[1], version, user.user_id)
    return {
        "restored_from": version,
        "restore_point": _out(restore_point),
        "version": _out(restored),
    }


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

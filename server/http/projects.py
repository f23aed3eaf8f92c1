"""REST routes for projects and their members."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from crdt.timeline import init_project, read_timeline
from persistence.projects import Project, Role
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import ApiError

router = APIRouter(prefix="/api/projects", tags=["projects"])


class ProjectCreate(BaseModel):
    title: str = Field(default="Untitled", min_length=1, max_length=200)
    fps: float = Field(default=30, gt=0, le=240)
    width: int = Field(default=1920, gt=0, le=8192)
    height: int = Field(default=1080, gt=0, le=8192)


class ProjectOut(BaseModel):
    id: uuid.UUID
    title: str
    owner_id: str
    role: Role
    created_at: str
    updated_at: str


class MemberSet(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    role: Role


def _out(project: Project, role: Role) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        title=project.title,
        owner_id=project.owner_id,
        role=role,
        created_at=project.created_at.isoformat(),
        updated_at=project.updated_at.isoformat(),
    )


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


async def require_role(
    services: Services, project_id: uuid.UUID, user_id: str, *, minimum: Role = Role.VIEWER
) -> tuple[Project, Role]:
    """The project and the caller's role, or 404 (not a member) / 403 (role too low)."""
    project = await services.directory.get_project(project_id)
    role = await services.directory.role_of(project_id, user_id) if project else None
    if project is None or role is None:
        # The same answer whether or not the project exists: ids do not leak.
        raise ApiError(404, "project_not_found", "no such project")
    if _RANK[role] < _RANK[minimum]:
        raise ApiError(403, "forbidden", f"this needs the {minimum.value} role or higher")
    return project, role


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_project(
    body: ProjectCreate, user: CurrentUser, services: ServicesDep
) -> ProjectOut:
    project = await services.directory.create_project(user.user_id, body.title)
    await services.rooms.edit(
        str(project.id),
        lambda doc: init_project(doc, body.title, body.fps, body.width, body.height),
    )
    return _out(project, Role.OWNER)


@router.get("")
async def list_projects(user: CurrentUser, services: ServicesDep) -> list[ProjectOut]:
    projects = await services.directory.list_projects(user.user_id)
    out = []
    for project in projects:
        role = await services.directory.role_of(project.id, user.user_id)
        if role is not None:
            out.append(_out(project, role))
    return out


@router.get("/{project_id}")
async def get_project(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    project, role = await require_role(services, project_id, user.user_id)
    async with services.rooms.hold(str(project_id)) as live:
        timeline = read_timeline(live.room.doc).to_json()
    return {**_out(project, role).model_dump(mode="json"), "timeline": timeline}


@router.post("/{project_id}/members", status_code=status.HTTP_200_OK)
async def set_member(
    project_id: uuid.UUID, body: MemberSet, user: CurrentUser, services: ServicesDep
) -> dict[str, str]:
    project, _ = await require_role(services, project_id, user.user_id, minimum=Role.OWNER)
    if body.role is Role.OWNER or body.user_id == project.owner_id:
        raise ApiError(400, "invalid_role", "a project has exactly one owner")
    await services.directory.set_member(project_id, body.user_id, body.role)
    services.rooms.set_can_edit(str(project_id), body.user_id, body.role.can_edit)
    return {"user_id": body.user_id, "role": body.role.value}


@router.delete("/{project_id}/members/{member_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    project_id: uuid.UUID, member_id: str, user: CurrentUser, services: ServicesDep
) -> None:
    project, _ = await require_role(services, project_id, user.user_id, minimum=Role.OWNER)
    if member_id == project.owner_id:
        raise ApiError(400, "invalid_role", "the owner cannot be removed")
    await services.directory.set_member(project_id, member_id, None)
    services.rooms.revoke(str(project_id), member_id)

"""REST routes for projects and their members.

The live document is the one source of truth for a project's title, fps and size: ``PATCH``
writes them into the document (collaborators see the change at once) and the project row is
its projection, written at once for the caller and again whenever edits settle. Every read of
a project (the list and one project) takes its fields from that row, so they agree.

``DELETE`` is a soft delete (owner only): the project disappears from every read and join and
its open websockets close with 4404; its document, versions, jobs and the credit ledger are
kept. It cannot be undone through the API.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, model_validator

from crdt.timeline import (
    PROJECT_FPS,
    PROJECT_HEIGHT,
    PROJECT_TITLE,
    PROJECT_WIDTH,
    TimelineError,
    init_project,
    read_timeline,
    set_project_fields,
)
from persistence.projects import Project, Role
from server.composition.services import Services
from server.http.deps import CurrentUser, ServicesDep
from server.http.errors import ApiError
from server.http.schemas import COMMON, TimelineOut, errors

router = APIRouter(prefix="/api/projects", tags=["projects"])

TITLE_CHARS_MAX = 200
MemberId = Annotated[str, Path(min_length=1, max_length=200)]


class ProjectCreate(BaseModel):
    title: str = Field(default="Untitled", min_length=1, max_length=TITLE_CHARS_MAX)
    fps: float = Field(default=30, gt=0, le=240)
    width: int = Field(default=1920, gt=0, le=8192)
    height: int = Field(default=1080, gt=0, le=8192)


class ProjectPatch(BaseModel):
    """Any of the fields; those left out keep their value."""

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_CHARS_MAX)
    fps: float | None = Field(default=None, gt=0, le=240)
    width: int | None = Field(default=None, gt=0, le=8192)
    height: int | None = Field(default=None, gt=0, le=8192)

    @model_validator(mode="after")
    def _something(self) -> ProjectPatch:
        if not self.model_fields_set or any(
            getattr(self, name) is None for name in self.model_fields_set
        ):
            raise ValueError("give at least one of title, fps, width, height (not null)")
        return self


class ProjectOut(BaseModel):
    id: uuid.UUID
    title: str
    owner_id: str
    role: Role = Field(description="The caller's role in this project.")
    # Null only until the document is first projected (a moment after creation).
    fps: float | None
    width: int | None
    height: int | None
    created_at: str
    updated_at: str = Field(
        description="The last stored edit of the document (within the settle delay, ~1 s)."
    )


class ProjectDetail(ProjectOut):
    timeline: TimelineOut


class MemberSet(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    role: Role


class MemberOut(BaseModel):
    user_id: str
    role: Role


def project_out(project: Project, role: Role) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        title=project.title,
        owner_id=project.owner_id,
        role=role,
        fps=project.fps,
        width=project.width,
        height=project.height,
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


async def mirrored(services: Services, project_id: uuid.UUID) -> Project:
    """Write the live document's project fields into the row now, and read the row back."""
    async with services.rooms.hold(str(project_id)) as live:
        info = read_timeline(live.room.doc).project
    await services.directory.mirror_project(project_id, info)
    project = await services.directory.get_project(project_id)
    if project is None:  # deleted meanwhile
        raise ApiError(404, "project_not_found", "no such project")
    return project


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(*COMMON))
async def create_project(
    body: ProjectCreate, user: CurrentUser, services: ServicesDep
) -> ProjectOut:
    """Create a project; the caller owns it."""
    project = await services.directory.create_project(user.user_id, body.title)
    await services.rooms.edit(
        str(project.id),
        lambda doc: init_project(doc, body.title, body.fps, body.width, body.height),
    )
    return project_out(await mirrored(services, project.id), Role.OWNER)


@router.get("", responses=errors(401))
async def list_projects(user: CurrentUser, services: ServicesDep) -> list[ProjectOut]:
    """The caller's projects (any role), most recently edited first (``updated_at``)."""
    return [
        project_out(p, role) for p, role in await services.directory.list_projects(user.user_id)
    ]


@router.get("/{project_id}", responses=errors(401, 404, 422))
async def get_project(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> ProjectDetail:
    """The project's row and its live timeline."""
    project, role = await require_role(services, project_id, user.user_id)
    async with services.rooms.hold(str(project_id)) as live:
        timeline = read_timeline(live.room.doc).to_json()
    return ProjectDetail.model_validate(
        {**project_out(project, role).model_dump(), "timeline": timeline}
    )


_PATCH_FIELDS = {
    "title": PROJECT_TITLE,
    "fps": PROJECT_FPS,
    "width": PROJECT_WIDTH,
    "height": PROJECT_HEIGHT,
}


@router.patch("/{project_id}", responses=errors(*COMMON, 403, 404))
async def update_project(
    project_id: uuid.UUID, body: ProjectPatch, user: CurrentUser, services: ServicesDep
) -> ProjectOut:
    """Change the title, fps or size (editor or owner): written into the live document, so
    collaborators see it at once."""
    _, role = await require_role(services, project_id, user.user_id, minimum=Role.EDITOR)
    fields = {_PATCH_FIELDS[name]: getattr(body, name) for name in body.model_fields_set}
    try:
        await services.rooms.edit(str(project_id), lambda doc: set_project_fields(doc, **fields))
    except TimelineError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    return project_out(await mirrored(services, project_id), role)


@router.delete(
    "/{project_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_project(project_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    """Delete the project (owner only). It disappears from every list and read, its open
    websockets close with 4404, and new joins get 4404. The document, its versions, jobs and
    credit ledger entries are kept; this cannot be undone through the API."""
    await require_role(services, project_id, user.user_id, minimum=Role.OWNER)
    members = await services.directory.delete_project(project_id)
    if members is None:
        raise ApiError(404, "project_not_found", "no such project")
    doc_id = str(project_id)
    await services.rooms.project_deleted(doc_id)
    # Other instances hear it as each member's removal: their sockets close there (4403).
    for member in members:
        services.rooms.revoke(doc_id, member)


@router.get("/{project_id}/members", responses=errors(401, 404, 422))
async def list_members(
    project_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> list[MemberOut]:
    """Every member and their role (any member may ask), the owner first."""
    await require_role(services, project_id, user.user_id)
    return [
        MemberOut(user_id=m.user_id, role=m.role)
        for m in await services.directory.list_members(project_id)
    ]


@router.post("/{project_id}/members", responses=errors(*COMMON, 400, 403, 404))
async def set_member(
    project_id: uuid.UUID, body: MemberSet, user: CurrentUser, services: ServicesDep
) -> MemberOut:
    """Add a member or change their role (owner only)."""
    project, _ = await require_role(services, project_id, user.user_id, minimum=Role.OWNER)
    if body.role is Role.OWNER or body.user_id == project.owner_id:
        raise ApiError(400, "invalid_role", "a project has exactly one owner")
    await services.directory.set_member(project_id, body.user_id, body.role)
    services.rooms.set_can_edit(str(project_id), body.user_id, body.role.can_edit)
    return MemberOut(user_id=body.user_id, role=body.role)


@router.delete(
    "/{project_id}/members/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(400, 401, 403, 404, 422),
)
async def remove_member(
    project_id: uuid.UUID, member_id: MemberId, user: CurrentUser, services: ServicesDep
) -> None:
    """Remove a member (owner only); their open websockets close with 4403."""
    project, _ = await require_role(services, project_id, user.user_id, minimum=Role.OWNER)
    if member_id == project.owner_id:
        raise ApiError(400, "invalid_role", "the owner cannot be removed")
    await services.directory.set_member(project_id, member_id, None)
    services.rooms.revoke(str(project_id), member_id)

"""Response shapes shared by the REST routes, as OpenAPI documents them.

Every error is ``{"error": {"code", "message", "request_id"}}`` (``ErrorBody``); ``errors``
builds a route's ``responses=`` from the statuses it can answer, so the schema lists each one
with that shape. The timeline models describe ``crdt.timeline.Timeline.to_json``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: branch on this.")
    message: str = Field(description="For people; may change.")
    request_id: str | None = Field(
        default=None, description="The response's X-Request-ID, to quote when reporting it."
    )


class Problem(BaseModel):
    path: str = Field(description="Where in the request or timeline: root[/id[/field]].")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class InvalidRenderDetail(ErrorDetail):
    problems: list[Problem] = Field(default_factory=list)


class InvalidRenderBody(BaseModel):
    """A render the timeline cannot make: every problem, with its path."""

    error: InvalidRenderDetail


_DESCRIPTIONS = {
    400: "Bad request: the body could not be parsed, or an invalid change (a second owner)",
    401: "Not authenticated: the bearer token is missing, invalid, expired or revoked",
    402: "Insufficient credits",
    403: "Forbidden: the caller's role is too low, or the link is invalid",
    404: "Not found (a project the caller is not a member of is not found either)",
    409: "Conflict with the resource's current state",
    411: "Length required: uploads need a Content-Length",
    413: "The request body is too large",
    415: "Unsupported media type",
    422: "Invalid request: the code and message say which field and why",
    429: "Rate limited: retry after Retry-After seconds",
    502: "The upstream provider failed",
    503: "The service (a provider, pricing, jobs or rendering) is not available here",
}

_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}

# What every authenticated /api route with a request body can answer besides its own errors:
# a body that cannot be parsed, an unauthenticated caller, a body over the limit, a body or
# parameter that fails validation.
COMMON = (400, 401, 413, 422)


def errors(
    *statuses: int, overrides: dict[int, type[BaseModel]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering these error statuses in the ``ErrorBody`` shape."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {
            "model": (overrides or {}).get(status, ErrorBody),
            "description": _DESCRIPTIONS.get(status, "Error"),
        }
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


# -- the timeline ---------------------------------------------------------------------------


class ProjectFields(BaseModel):
    title: str
    fps: float
    width: int
    height: int
    thumbnail_asset: str | None


class TrackOut(BaseModel):
    id: str
    kind: str = Field(description="video, audio, subtitle or overlay")
    name: str
    order: str = Field(description="Fractional index: tracks sort by (order, id).")
    muted: bool
    locked: bool


class ClipOut(BaseModel):
    id: str
    track: str
    kind: str
    asset: str | None
    start_ms: int
    duration_ms: int
    source_in_ms: int
    volume: float
    text: str | None


class AssetOut(BaseModel):
    id: str
    kind: str = Field(description="video, audio or image")
    name: str
    uri: str = Field(description="media://<key> for stored media; get a link from .../url")
    duration_ms: int | None
    origin: str


class TimelineOut(BaseModel):
    """The live document as JSON. Entries a collaborator wrote malformed are left out and
    listed in ``problems``."""

    project: ProjectFields
    tracks: list[TrackOut]
    clips: list[ClipOut]
    assets: list[AssetOut]
    problems: list[Problem]

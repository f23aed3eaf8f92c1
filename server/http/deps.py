"""FastAPI dependencies: the HTTP edge's view of the services and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.auth import AuthError, Identity
from server.composition.services import Services
from server.http.errors import ApiError


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_user(request: Request, services: ServicesDep) -> Identity:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        return await services.verifier.verify(token.strip() if scheme.lower() == "bearer" else None)
    except AuthError as exc:
        raise ApiError(401, exc.code, str(exc)) from exc


CurrentUser = Annotated[Identity, Depends(current_user)]

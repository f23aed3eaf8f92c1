"""FastAPI dependencies: the HTTP edge's view of the services and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth import AuthError, Identity
from server.composition.services import Services
from server.http.errors import ApiError


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

# Declares the bearer scheme in OpenAPI (Swagger's "Authorize" button); the check and its
# error codes (token_missing, token_invalid, token_expired ...) stay ours, hence no auto_error.
bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A Supabase-compatible access token (`flowai token --user ID` locally).",
)


async def current_user(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity:
    try:
        return await services.verifier.verify(
            credentials.credentials.strip() if credentials else None
        )
    except AuthError as exc:
        raise ApiError(401, exc.code, str(exc)) from exc


CurrentUser = Annotated[Identity, Depends(current_user)]

"""What every route that queues a job shares (AI operations, voice clones, renders).

A job route validates its request, then ``submit``: the price is checked (an unpriced model
is a configuration error, reported before anything is counted), the caller's rate limit is
taken, credits are held and the job is queued; the answer is ``202`` with the job.
``client_errors`` maps the errors met on the way to their HTTP answers, in one place:

=========================  ======  ==========================
error                      status  code
=========================  ======  ==========================
``InvalidInput``           422     the error's own code
``ProviderNotConfigured``  503     ``provider_not_configured``
``UnknownPrice``           503     ``price_not_configured``
``InsufficientCredits``    402     ``insufficient_credits``
rate limit                 429     ``rate_limited`` (with ``Retry-After``)
=========================  ======  ==========================
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import status
from fastapi.responses import JSONResponse

from ai.errors import InvalidInput, ProviderNotConfigured
from ai.ports import JobRecord
from ai.usage import Usage
from billing.errors import InsufficientCredits, UnknownPrice
from billing.wording import credits
from server.composition.ai import AiServices
from server.http.errors import ApiError
from server.http.jobs import JobOut, job_out
from server.http.schemas import COMMON, errors

# ``responses=`` of a job route: 202 with the job, and the errors ``submit`` can answer
# (plus 404/403 for routes on a project, which they add).
JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": JobOut, "description": "Queued: follow it at GET /api/jobs/{id}"},
    **errors(*COMMON, 402, 429, 503),
}


async def rate_limit(ai: AiServices, user_id: str, operation: str) -> None:
    """Count one ``operation`` request of ``user_id``; 429 with ``Retry-After`` past its rate."""
    decision = await ai.rate_limiter.hit(f"{operation}:{user_id}", ai.rates[operation])
    if not decision.allowed:
        retry_after = max(1, math.ceil(decision.retry_after_s))
        raise ApiError(
            429,
            "rate_limited",
            f"too many {operation} requests; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


@asynccontextmanager
async def client_errors() -> AsyncIterator[None]:
    """The errors a request can meet before it is queued, as HTTP answers."""
    try:
        yield
    except InvalidInput as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    except ProviderNotConfigured as exc:
        raise ApiError(503, exc.code, exc.message) from exc
    except UnknownPrice as exc:
        raise ApiError(503, "price_not_configured", str(exc)) from exc
    except InsufficientCredits as exc:
        raise ApiError(
            402,
            "insufficient_credits",
            f"this request needs {credits(exc.required)}; {exc.available} available",
        ) from exc


def accepted(record: JobRecord) -> JSONResponse:
    body = job_out(record).model_dump(mode="json")
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED)


async def submit(
    ai: AiServices,
    *,
    kind: str,
    user_id: str,
    project_id: uuid.UUID | None,
    operation: str | None,
    job_input: dict[str, Any],
    estimate: Usage,
    job_id: uuid.UUID | None = None,
) -> JSONResponse:
    """Price, rate-limit (``operation``; None: not limited), hold and queue; ``202``."""
    async with client_errors():
        ai.jobs.price(estimate)
        if operation is not None:
            await rate_limit(ai, user_id, operation)
        record = await ai.jobs.submit(
            kind=kind,
            user_id=user_id,
            project_id=project_id,
            input=job_input,
            estimate=estimate,
            job_id=job_id,
        )
    return accepted(record)

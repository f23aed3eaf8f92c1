"""Submitting, running, cancelling and finishing jobs (see ``ai.jobs`` for the flow)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from ai.errors import JobCancelled
from ai.jobs.context import (
    Handler,
    JobContext,
    JobRegistry,
    Outcome,
    QueueBackend,
    RetryPolicy,
    error_json,
    presence_client_id,
    remove_dir,
    scratch_dir,
)
from ai.ports import JobRecord, JobStatus, JobStore, LiveDocuments, MediaStore
from ai.usage import Usage, credits_for
from billing.ledger import Status
from billing.prices import PriceTable
from billing.service import CreditService

__all__ = ["Jobs"]

log = logging.getLogger(__name__)

HOLD_TTL_S_DEFAULT: Final = 24 * 3600


def _hold_key(job_id: uuid.UUID) -> str:
    return f"job:{job_id}:hold"


class Jobs:
    """Submission (HTTP side), execution (worker side) and the final bookkeeping of jobs."""

    def __init__(
        self,
        *,
        store: JobStore,
        credits: CreditService,
        prices: PriceTable,
        registry: JobRegistry,
        rooms: LiveDocuments,
        media: MediaStore,
        retry: RetryPolicy,
        hold_ttl_s: int = HOLD_TTL_S_DEFAULT,
    ) -> None:
        self.store = store
        self.credits = credits
        self.prices = prices
        self.registry = registry
        self.rooms = rooms
        self.media = media
        self.retry = retry
        self.hold_ttl_s = hold_ttl_s
        self.queue: QueueBackend | None = None  # set once the queue is built

    # -- submission -----------------------------------------------------------------------

    def price(self, estimate: Usage) -> int:
        return credits_for(self.prices, estimate)

    async def submit(
        self,
        *,
        kind: str,
        user_id: str,
        project_id: uuid.UUID | None,
        input: dict[str, Any],
        estimate: Usage,
        job_id: uuid.UUID | None = None,
    ) -> JobRecord:
        """Hold the estimated cost and queue the job. Raises ``billing.errors.
        InsufficientCredits`` (nothing is queued) when the user cannot cover the estimate."""
        spec = self.registry.get(kind)
        if spec is None or self.queue is None:
            raise LookupError(f"no job kind {kind!r}")
        job_id = job_id or uuid.uuid4()
        amount = self.price(estimate)
        hold_id = None
        if amount > 0:
            held = await self.credits.place_hold(
                user_id,
                amount,
                key=_hold_key(job_id),
                job_id=str(job_id),
                ttl_s=self.hold_ttl_s,
                metadata={"kind": kind},
            )
            hold = held.raise_for_status().hold
            hold_id = hold.id if hold is not None else None
        now = datetime.now(UTC)
        record = JobRecord(
            id=job_id,
            kind=kind,
            user_id=user_id,
            project_id=project_id,
            status=JobStatus.QUEUED,
            stage="queued",
            progress=0.0,
            input=input,
            result=None,
            error=None,
            estimate=amount,
            cost=None,
            hold_id=hold_id,
            usage={"estimate": estimate.to_json()},
            attempts=0,
            cancel_requested=False,
            queue_job_id=None,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.store.create(record)
            queue_job_id = await self.queue.enqueue(job_id, spec.queue)
            await self.store.update(job_id, queue_job_id=queue_job_id)
        except BaseException:
            # Nothing will ever run this job: the hold goes back to the user.
            await asyncio.shield(self._abandon(record))
            raise
        return replace(record, queue_job_id=queue_job_id)

    async def _abandon(self, record: JobRecord) -> None:
        try:
            await self._release(record, "abandoned")
            await self.store.finish(
                record.id,
                JobStatus.FAILED,
                error={"code": "not_queued", "message": "the job could not be queued"},
            )
        except Exception:
            log.exception("could not abandon a job that failed to queue", extra=_ids(record))

    async def cancel(self, job_id: uuid.UUID, user_id: str) -> JobRecord | None:
        """Cancel the caller's queued or running job; None when there is no such unfinished
        job. A queued job ends at once; a running one ends as soon as its worker notices."""
        record = await self.store.request_cancel(job_id, user_id)
        if record is None:
            return None
        never_starts = True
        if record.queue_job_id is not None and self.queue is not None:
            never_starts = await self.queue.cancel(record.queue_job_id)
        if never_starts:
            # Waiting in the queue or between attempts: no worker will finish it for us.
            await self.finish_cancelled(record)
        return await self.store.get(job_id)

    # -- running --------------------------------------------------------------------------

    async def run(self, job_id: uuid.UUID, attempt: int) -> None:
        """Run one attempt of a job (called by the queue's worker)."""
        record = await self.store.claim(job_id, attempt)
        if record is None:
            current = await self.store.get(job_id)
            if current is not None and not current.status.final and current.cancel_requested:
                await self.finish_cancelled(current)
            return
        spec = self.registry.get(record.kind)
        if spec is None:
            await self.fail(record, LookupError(f"no handler for job kind {record.kind!r}"))
            return
        workdir = scratch_dir(job_id)
        ctx = JobContext(
            job=record,
            attempt=attempt,
            store=self.store,
            media=self.media,
            rooms=self.rooms,
            workdir=workdir,
            checkpoint=dict(record.checkpoint),
        )
        try:
            await self._attempt(ctx, spec.handler)
        finally:
            remove_dir(workdir)

    async def _attempt(self, ctx: JobContext, handler: Handler) -> None:
        record = ctx.job
        ctx.show("running", record.progress, "started")
        try:
            outcome: Outcome = await handler(ctx)
            await ctx.progress(1.0, "delivering")  # The last chance to cancel.
        except JobCancelled:
            await asyncio.shield(self.finish_cancelled(record))
            return
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted(record, ctx.attempt))
            raise
        except Exception as exc:
            await asyncio.shield(self._attempt_failed(record, ctx.attempt, exc))
            raise
        commit = asyncio.ensure_future(self._commit(ctx, outcome))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # A cancel or shutdown during the commit: the result is being delivered, let it.
            await commit
        except Exception as exc:
            await asyncio.shield(self._attempt_failed(record, ctx.attempt, exc))
            raise

    async def _commit(self, ctx: JobContext, outcome: Outcome) -> None:
        record = ctx.job
        if outcome.deliver is not None:
            await outcome.deliver()
        cost = await self._capture(record, outcome.usage)
        await self.store.finish(
            record.id,
            JobStatus.SUCCEEDED,
            result=outcome.result,
            cost=cost,
            usage={**(record.usage or {}), "actual": outcome.usage.to_json()},
            progress=1.0,
            stage="done",
        )
        ctx.withdraw()
        log.info("job succeeded", extra={**_ids(record), "cost": cost})

    async def _capture(self, record: JobRecord, usage: Usage) -> int:
        if record.hold_id is None:
            return 0
        amount = min(credits_for(self.prices, usage), record.estimate)
        result = await self.credits.capture(
            record.user_id,
            record.hold_id,
            amount,
            key=f"job:{record.id}:capture",
            cap_at_hold=True,
            metadata={"kind": record.kind},
        )
        if result.status is Status.ALREADY_EXPIRED:
            log.error("hold expired before capture; job not charged", extra=_ids(record))
            return 0
        result.raise_for_status()
        return result.hold.captured if result.hold is not None else amount

    async def _interrupted(self, record: JobRecord, attempt: int) -> None:
        """The attempt's task was cancelled: by the user (abort) or by a worker shutdown."""
        current = await self.store.get(record.id)
        if current is not None and current.cancel_requested:
            await self.finish_cancelled(current)
            return
        await self._attempt_failed(record, attempt, asyncio.CancelledError())

    async def _attempt_failed(self, record: JobRecord, attempt: int, exc: BaseException) -> None:
        delay = self.retry.delay_s(exc, attempt)
        if delay is None:
            await self.fail(record, exc)
            return
        log.warning(
            "job attempt failed; retrying",
            extra={**_ids(record), "attempt": attempt, "delay_s": delay, "error": repr(exc)},
        )
        await self.store.update(
            record.id, status=JobStatus.QUEUED, stage="retrying", error=error_json(exc)
        )
        # Presence shows running work only; the next attempt may run in another process.
        self._withdraw(record)

    # -- final states ---------------------------------------------------------------------

    async def fail(self, record: JobRecord, exc: BaseException) -> None:
        if not isinstance(exc, JobCancelled):
            log.warning("job failed", extra={**_ids(record), "error": repr(exc)})
        await self._release(record, "failed")
        await self.store.finish(record.id, JobStatus.FAILED, error=error_json(exc))
        self._withdraw(record)

    async def finish_cancelled(self, record: JobRecord) -> None:
        await self._release(record, "cancelled")
        await self.store.finish(
            record.id,
            JobStatus.CANCELLED,
            error={"code": "cancelled", "message": "cancelled by the user"},
        )
        self._withdraw(record)

    async def _release(self, record: JobRecord, why: str) -> None:
        if record.hold_id is None:
            return
        # One key for every path (failure, cancel, recovery): the release happens once.
        result = await self.credits.release(
            record.user_id, record.hold_id, key=f"job:{record.id}:release"
        )
        if not result.ok and result.status not in (
            Status.ALREADY_CAPTURED,
            Status.ALREADY_RELEASED,
            Status.ALREADY_EXPIRED,
        ):
            result.raise_for_status()
        log.info("hold released", extra={**_ids(record), "why": why})

    def _withdraw(self, record: JobRecord) -> None:
        """Remove the job's presence entry: it is no longer running here."""
        if record.project_id is not None:
            self.rooms.presence(str(record.project_id), presence_client_id(record.id), None)


def _ids(record: JobRecord) -> dict[str, str]:
    return {"job_id": str(record.id), "kind": record.kind, "user_id": record.user_id}

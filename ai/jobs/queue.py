"""The queue under the jobs: procrastinate on PostgreSQL (asyncio, LISTEN/NOTIFY, retries,
abort, worker heartbeats).

One procrastinate task, ``flowai.run_job``, carries only our job id; the ``jobs`` table holds
everything else, and ``ai.jobs.runner.Jobs`` runs it. Retries follow ``RetryPolicy`` (the same
decision the runner records on the job). A worker that dies mid-job stops sending heartbeats;
``recover`` (run periodically by every worker process) retries its jobs, or fails them and
releases their holds when no attempt is left, so no job stays "running" forever. It also
settles jobs the queue lost track of (a crash between recording and queueing a job).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate.exceptions import ConnectorException, JobAborted
from procrastinate.job_context import AbortReason
from procrastinate.job_context import JobContext as QueueContext
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy

from ai.errors import AiError
from ai.jobs.context import RetryPolicy
from ai.jobs.runner import Jobs

__all__ = ["TASK_NAME", "JobQueue", "WorkerSettings"]

log = logging.getLogger(__name__)

TASK_NAME: Final = "flowai.run_job"
RECOVERY_BATCH_MAX: Final = 100
_SUCCEEDED_RETENTION_HOURS: Final = 24


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 4
    heartbeat_s: float = 10.0
    # A worker silent for this long is dead: its jobs are recovered.
    stalled_after_s: float = 30.0
    poll_s: float = 5.0
    recovery_interval_s: float = 15.0
    # On shutdown, running jobs get this long to finish before they are interrupted (and
    # retried by another worker).
    shutdown_grace_s: float = 10.0
    # Jobs recorded but never queued are settled after this long.
    orphan_after_s: float = 60.0


class _Retry(BaseRetryStrategy):
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        delay = self._policy.delay_s(exception, job.attempts)
        if delay is None:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=delay))


class JobQueue:
    """Implements ``ai.jobs.context.QueueBackend`` and runs workers."""

    def __init__(self, dsn: str, jobs: Jobs, settings: WorkerSettings) -> None:
        self._jobs = jobs
        self.settings = settings
        connector = PsycopgConnector(conninfo=dsn, min_size=1, max_size=settings.concurrency + 4)
        self.app = App(connector=connector)

        async def run_job(context: QueueContext, job_id: str) -> None:
            try:
                await jobs.run(uuid.UUID(job_id), context.job.attempts)
            except asyncio.CancelledError:
                if context.abort_reason() is AbortReason.USER_REQUEST:
                    # Cancelled by the user: final, never retried.
                    raise JobAborted() from None
                raise

        self._task = self.app.task(
            name=TASK_NAME, pass_context=True, retry=_Retry(jobs.retry), queue="ai"
        )(run_job)
        jobs.queue = self

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue(self, job_id: uuid.UUID, queue: str) -> int:
        queue_job_id: int = await self._task.configure(queue=queue).defer_async(job_id=str(job_id))
        return queue_job_id

    async def cancel(self, queue_job_id: int) -> bool:
        manager = self.app.job_manager
        await manager.cancel_job_by_id_async(queue_job_id, abort=True)
        try:
            status = await manager.get_job_status_async(queue_job_id)
        except (TypeError, ConnectorException):
            return False  # Deleted once it succeeded: it ended, nothing will start it.
        return status in (Status.CANCELLED, Status.FAILED, Status.ABORTED)

    async def run_worker(self, *, queues: list[str] | None = None, name: str = "worker") -> None:
        """Run jobs until cancelled; recovery of dead workers' jobs runs alongside."""
        s = self.settings
        recovery = asyncio.create_task(self.recover_forever(), name="job-recovery")
        try:
            await self.app.run_worker_async(
                queues=cast("list[str]", queues),  # None: every queue
                name=name,
                concurrency=s.concurrency,
                wait=True,
                fetch_job_polling_interval=s.poll_s,
                abort_job_polling_interval=s.poll_s,
                shutdown_graceful_timeout=s.shutdown_grace_s,
                listen_notify=True,
                install_signal_handlers=False,
                update_heartbeat_interval=s.heartbeat_s,
                stalled_worker_timeout=s.stalled_after_s,
                delete_jobs="successful",
            )
        finally:
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)

    async def recover_forever(self) -> None:
        cycles = 0
        while True:
            try:
                await self.recover()
                cycles += 1
                if cycles % max(1, int(3600 / self.settings.recovery_interval_s)) == 0:
                    await self.app.job_manager.delete_old_jobs(
                        nb_hours=_SUCCEEDED_RETENTION_HOURS, include_failed=False
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job recovery failed; trying again at the next interval")
            await asyncio.sleep(self.settings.recovery_interval_s)

    async def recover(self) -> int:
        """Settle the jobs of dead workers and jobs the queue lost; returns how many."""
        settled = 0
        stalled = await self.app.job_manager.get_stalled_jobs(
            task_name=TASK_NAME, seconds_since_heartbeat=self.settings.stalled_after_s
        )
        for job in list(stalled)[:RECOVERY_BATCH_MAX]:
            settled += await self._recover_stalled(job)
        for record in await self._jobs.store.stuck(
            self.settings.orphan_after_s, RECOVERY_BATCH_MAX
        ):
            if record.cancel_requested:
                await self._jobs.finish_cancelled(record)
            else:
                await self._jobs.fail(record, _lost("the job was lost by the queue"))
            settled += 1
        return settled

    async def _recover_stalled(self, job: Job) -> int:
        job_id = uuid.UUID(str(job.task_kwargs["job_id"]))
        record = await self._jobs.store.get(job_id)
        unfinished = record is not None and not record.status.final
        retry = (
            unfinished
            and record is not None
            and not record.cancel_requested
            and job.attempts + 1 < self._jobs.retry.max_attempts
        )
        manager = self.app.job_manager
        try:
            if retry:
                await manager.retry_job(job)
            else:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except ConnectorException:
            return 0  # Another process recovered it first.
        log.warning(
            "recovered a job from a dead worker",
            extra={"job_id": str(job_id), "retried": retry, "attempts": job.attempts},
        )
        if record is None or not unfinished:
            return 1
        if record.cancel_requested:
            await self._jobs.finish_cancelled(record)
        elif retry:
            error: dict[str, Any] = {"code": "worker_lost", "message": "the worker stopped"}
            await self._jobs.store.update(job_id, status="queued", stage="recovering", error=error)
        else:
            await self._jobs.fail(record, _lost("the worker running the job stopped"))
        return 1


def _lost(message: str) -> AiError:
    return AiError(message, code="worker_lost")

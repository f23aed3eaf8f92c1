"""What a job handler is, gets and returns: ``JobKind`` and ``JobRegistry``, ``JobContext``
(progress, cancellation, checkpoints, media, live documents, a scratch directory), ``Outcome``;
and what the runner and the queue share: ``RetryPolicy`` and the ``QueueBackend`` port. The
flow itself is described in ``ai.jobs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from ai.errors import AiError, JobCancelled, ProviderTransient
from ai.ports import JobRecord, JobStore, LiveDocuments, MediaStore
from ai.usage import Usage

__all__ = [
    "Handler",
    "JobContext",
    "JobKind",
    "JobRegistry",
    "Outcome",
    "QueueBackend",
    "RetryPolicy",
    "error_json",
    "presence_client_id",
    "presence_state",
]

log = logging.getLogger(__name__)

STAGE_LENGTH_MAX: Final = 80


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a handler produced. ``deliver`` writes into the live document; it must be
    idempotent (deterministic ids), since a crash after it ran means it runs again."""

    result: dict[str, Any]
    usage: Usage
    deliver: Callable[[], Awaitable[None]] | None = None


Handler = Callable[["JobContext"], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    queue: str = "ai"


class JobRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    @property
    def queues(self) -> list[str]:
        return sorted({k.queue for k in self._kinds.values()})


class QueueBackend(Protocol):
    async def enqueue(self, job_id: uuid.UUID, queue: str) -> int:
        """Queue the job for a worker; returns the queue's id for it."""
        ...

    async def cancel(self, queue_job_id: int) -> bool:
        """True when the job will now never start; False when a worker has it (it was asked
        to abort) or it already ended."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed attempt is tried again. ``attempt`` is 0 for the first run."""

    max_attempts: int = 4
    base_delay_s: float = 2.0
    max_delay_s: float = 120.0
    # Infrastructure errors worth another attempt (database connection lost ...).
    transient: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)

    def delay_s(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None: do not retry."""
        if attempt + 1 >= self.max_attempts:
            return None
        if isinstance(exc, asyncio.CancelledError):
            return 0.0  # Interrupted by a worker shutdown, not by its own fault.
        if not isinstance(exc, (ProviderTransient, *self.transient)):
            return None
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0**attempt)
        hint = exc.retry_after_s if isinstance(exc, ProviderTransient) else None
        if hint is not None and hint > backoff:
            return min(hint, self.max_delay_s)
        return backoff


def error_json(exc: BaseException) -> dict[str, str]:
    """What a job shows of its error: our own errors say what happened, others do not leak."""
    if isinstance(exc, AiError):
        return {"code": exc.code, "message": exc.message[:500]}
    if isinstance(exc, asyncio.CancelledError):
        return {"code": "interrupted", "message": "the worker stopped while running the job"}
    return {"code": "internal_error", "message": "the job failed unexpectedly"}


def presence_client_id(job_id: uuid.UUID) -> int:
    """A stable awareness client id for a job: 31 bits of its id with the top bit of a uint32
    set, so it stays below 2**32 and is the same in every process."""
    return 0x8000_0000 | (job_id.int & 0x7FFF_FFFF)


def presence_state(record: JobRecord, status: str, progress: float, stage: str) -> dict[str, Any]:
    return {
        "job": {
            "id": str(record.id),
            "kind": record.kind,
            "user_id": record.user_id,
            "status": status,
            "progress": round(progress, 3),
            "stage": stage,
        }
    }


@dataclass
class JobContext:
    """What a handler gets: the job, its attempt, services, and the means to report."""

    job: JobRecord
    attempt: int
    store: JobStore
    media: MediaStore
    rooms: LiveDocuments
    workdir: Path
    checkpoint: dict[str, Any] = field(default_factory=dict)

    @property
    def project_id(self) -> str:
        if self.job.project_id is None:
            raise ValueError(f"job {self.job.id} has no project")
        return str(self.job.project_id)

    def show(self, status: str, progress: float, stage: str) -> None:
        """Show the job to the project's collaborators (awareness presence)."""
        if self.job.project_id is not None:
            state = presence_state(self.job, status, progress, stage)
            self.rooms.presence(self.project_id, presence_client_id(self.job.id), state)

    def withdraw(self) -> None:
        if self.job.project_id is not None:
            self.rooms.presence(self.project_id, presence_client_id(self.job.id), None)

    async def progress(self, fraction: float, stage: str) -> None:
        """Record progress in ``[0, 1]``; raises ``JobCancelled`` if the user cancelled."""
        fraction = min(1.0, max(0.0, fraction))
        stage = stage[:STAGE_LENGTH_MAX]
        cancel_requested = await self.store.progress(self.job.id, fraction, stage)
        if cancel_requested:
            raise JobCancelled()
        self.show("running", fraction, stage)

    async def step(self, name: str, run: Callable[[], Awaitable[tuple[Any, Usage]]]) -> Any:
        """Run ``run`` once per job: its value (JSON) and usage are checkpointed, and a later
        attempt gets the value back without calling the provider again. Either way the value
        returned is the JSON round trip of what ``run`` returned."""
        saved = self.checkpoint.get(name)
        if isinstance(saved, dict) and "value" in saved:
            return saved["value"]
        value, usage = await run()
        entry = {"value": json.loads(json.dumps(value)), "usage": usage.to_json()}
        await self.store.save_checkpoint(self.job.id, name, entry)
        self.checkpoint[name] = entry
        return entry["value"]

    def usage(self) -> Usage:
        """Everything the job's completed steps consumed, over all its attempts."""
        total = Usage()
        for entry in self.checkpoint.values():
            if isinstance(entry, dict):
                total.merge(Usage.from_json(entry.get("usage")))
        return total


def scratch_dir(job_id: uuid.UUID) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"flowai-job-{job_id.hex[:12]}-"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

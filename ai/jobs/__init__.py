"""Durable jobs: the generic flow every AI and render request goes through.

``estimate -> hold -> run -> capture -> deliver``, or ``release`` on failure or cancel:

1. ``Jobs.submit`` (in the HTTP request): price the estimated usage, place a credit hold for
   it (``402`` when the user cannot cover it; nothing is queued), record the job, queue it.
2. A worker runs the kind's handler with a ``JobContext``: progress reporting (stored and
   shown to the project's collaborators as presence), cancellation checks, media storage,
   the live documents (``ai.ports.LiveDocuments``), a scratch directory, and ``step``
   checkpoints that survive a crash, so a retried job never pays a provider twice for work
   it already has.
3. The handler returns an ``Outcome``: its result, the actual usage, and a ``deliver``
   callback that writes into the live document. The runner then commits: deliver, capture the
   actual cost (never above the hold), mark the job succeeded. Once the commit has started a
   cancel no longer interrupts it.
4. Transient provider errors (429, 5xx, timeouts, malformed bodies) are retried with
   exponential backoff up to ``RetryPolicy.max_attempts``; anything else fails at once. A
   failed or cancelled job releases its hold: a failed request never costs credits.

Other packages add job kinds by registering a handler (``JobRegistry.register``); the queue
itself (``ai.jobs.queue``) is procrastinate on PostgreSQL.

The package, one module per concern (``context`` is imported by every handler, so it carries
no database, queue or billing imports; ``runner`` and ``queue`` sit on top of it):

- ``context``: what a handler is, gets and returns (``JobKind``, ``JobContext``, ``Outcome``)
  and what the runner and the queue share (``RetryPolicy``, the ``QueueBackend`` port).
- ``runner``: ``Jobs``, submission (the hold), running an attempt, the commit (deliver,
  capture) and the final states (release).
- ``queue``: ``JobQueue``, procrastinate on PostgreSQL, workers and recovery of dead workers'
  jobs.
"""

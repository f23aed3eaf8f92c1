"""AI services: provider adapters, media storage, durable jobs and the product's operations
(content, subtitles, dubbing, thumbnails, voice clones). See ``docs/ai.md``.

Where things are:

- ``ports``: what the operations and jobs need from the outside world (providers, media,
  job and voice stores, live documents), as Protocols, with their request/response types.
- ``providers/``: the OpenAI and ElevenLabs adapters that implement the provider ports.
- ``jobs/``: the durable job flow (``context`` for handlers, ``runner``, ``queue``).
- ``operations/``: one module per product operation, each a job kind.
- Helpers kept at the top because operations, jobs, routes and ``render`` share them. With
  I/O: ``audio`` (ffmpeg steps), ``media`` (S3 and local stores, media keys), ``rate_limit``
  (Redis or memory). Pure: ``segments``, ``sniff``, ``text_safety``, ``subtitles_format``
  (SRT and WebVTT), ``usage`` (metered usage and its price), ``languages``, ``errors``.

Why this cut: the adapters are the only modules that import a vendor SDK, and only the
composition root imports them, so they sit together in ``providers/``. The job flow has three
parts with different dependencies (what handlers import carries no queue, database or
billing; the runner adds billing; the queue adds procrastinate), so ``jobs/`` keeps them
apart and every operation imports only ``jobs.context``. Jobs reach live documents through
the ``ports.LiveDocuments`` Protocol, so this package does not depend on ``crdt``'s room
registry. ``render`` builds on this package (its job is a job kind); nothing here imports
``render``, ``server`` or ``persistence``.
"""

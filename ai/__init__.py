"""AI services: provider adapters, media storage, durable jobs and the product's operations
(content, subtitles, dubbing, thumbnails, voice clones). See ``docs/ai.md``.

Where things are, from the outside in:

- ``ports``: what the operations and jobs need from the outside world (providers, media,
  job and voice stores, live documents), as Protocols, with their request/response types.
- ``providers/``: the OpenAI and ElevenLabs adapters that implement the provider ports.
- ``jobs/``: the durable job flow (``context`` for handlers, ``runner``, ``queue``).
- ``operations/``: one module per product operation, each a job kind.
- Small helpers the operations share, each pure unless its name says I/O: ``audio`` (ffmpeg
  steps), ``media`` (S3 and local stores, media keys), ``segments``, ``sniff``, ``languages``,
  ``text_safety``, ``subtitles_format`` (SRT and WebVTT), ``usage`` (metered usage and its
  price), ``rate_limit``, ``errors``.

``render`` builds on this package (its job is a job kind); nothing here imports ``render``.
"""

"""Rendering a project's timeline to a video file, and moving timelines to and from editors.

- ``spec``: the live document's ``Timeline`` to a validated ``RenderSpec`` (pure).
- ``ffmpeg_command``: the ffmpeg arguments, filter graph and subtitle scripts for a spec
  (pure); ``ffmpeg_output``: reading what ffmpeg prints (media summary, ``-progress``,
  ``-benchmark``; pure); ``ffmpeg_local``: the runner that probes inputs, runs ffmpeg,
  reports progress and kills it on cancel (I/O). The pure halves are unit-tested with plain
  data; only the runner needs an ffmpeg process.
- ``remotion_lambda``: the same spec rendered on Remotion Lambda.
- ``progress``: ``RenderProgress``, what both backends report (so neither backend imports the
  other).
- ``job``: the render job (estimate, hold, render, capture, deliver), a job kind of
  ``ai.jobs``.
- ``otio``: OpenTimelineIO export and import. ``errors``: the package's exceptions.

Why this cut: the local renderer was one module of two halves; what ffmpeg is told and what
it prints are plain text, tested without a process, so they are modules of their own, and
the runner keeps only the process (probe, run, progress, kill). ``RenderProgress`` is shared
by both backends, so it lives in neither. This package builds on ``ai`` (jobs, media storage,
usage, the ffmpeg binary, the SRT writer ``ai.subtitles_format``); ``ai`` never imports
``render``.
"""

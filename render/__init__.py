"""Rendering a project's timeline to a video file, and moving timelines to and from editors.

``spec`` turns the live document's ``Timeline`` into a validated ``RenderSpec`` (pure);
``ffmpeg_local`` renders a spec on this machine with ffmpeg; ``remotion_lambda`` renders it
on Remotion Lambda; ``job`` is the render job (estimate, hold, render, capture, deliver);
``otio`` exports and imports OpenTimelineIO; ``errors`` holds the package's exceptions.
"""

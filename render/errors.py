"""Errors of the render package.

::

    RenderError
    ├── InvalidRender (also ValueError)  the timeline or the request cannot be rendered;
    │                                    ``problems`` lists every reason with its path
    ├── MediaUnavailable                 an asset's media cannot be read (missing, refused URI)
    ├── RenderFailed                     the renderer failed; ``transient`` when a retry may work
    │   └── BackendMisconfigured         the renderer is set up wrongly (e.g. the Remotion
    │                                    function's version differs from the client's)
    └── RenderCancelled                  the render was cancelled and its output discarded

``code`` is the stable name a job or an API response carries for each of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from crdt.timeline import Problem

__all__ = [
    "BackendMisconfigured",
    "InvalidRender",
    "MediaUnavailable",
    "RenderCancelled",
    "RenderError",
    "RenderFailed",
]

_SHOWN_MAX = 20


class RenderError(Exception):
    code = "render_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRender(RenderError, ValueError):
    """The timeline or the request cannot be rendered; ``problems`` lists every reason."""

    code = "invalid_render"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        shown = "; ".join(f"{p.path}: {p.message}" for p in self.problems[:_SHOWN_MAX])
        more = f"; and {count - _SHOWN_MAX} more" if count > _SHOWN_MAX else ""
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"the timeline cannot be rendered ({count} {noun}): {shown}{more}")


class MediaUnavailable(RenderError):
    code = "media_unavailable"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"{p.path}: {p.message}" for p in self.problems[:_SHOWN_MAX])
        super().__init__(f"media cannot be read: {shown}")


class RenderFailed(RenderError):
    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BackendMisconfigured(RenderFailed):
    code = "render_backend_misconfigured"

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class RenderCancelled(RenderError):
    code = "render_cancelled"

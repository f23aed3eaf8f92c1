"""How far a render is, as every backend reports it (``render.ffmpeg_local`` and
``render.remotion_lambda``) and the render job shows it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "RenderProgress"]


@dataclass(frozen=True, slots=True)
class RenderProgress:
    """How far a render is: ``fraction`` in [0, 1], and the stage it is in."""

    fraction: float
    stage: str

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)


ProgressCallback = Callable[[RenderProgress], Awaitable[None]]

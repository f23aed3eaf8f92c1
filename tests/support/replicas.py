"""Documents as another peer holds them, for tests of the document model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Doc


def replica(doc: Doc[Any]) -> Doc[Any]:
    """The document as another peer (or the server) holds it: roots untyped, numbers floats."""
    other: Doc[Any] = Doc()
    other.apply_update(doc.get_update())
    return other


def remote(build: Callable[[Doc[Any]], None]) -> Doc[Any]:
    """Content written with raw pycrdt, as a misbehaving browser would, received remotely."""
    src: Doc[Any] = Doc()
    build(src)
    return replica(src)

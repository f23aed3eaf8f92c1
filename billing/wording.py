"""Counts in user-facing messages: "1 credit", "2 credits" (pure)."""

from __future__ import annotations

__all__ = ["count", "credits"]


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` followed by the noun in the number it takes (English: singular for 1 and -1)."""
    noun = singular if abs(n) == 1 else (plural or f"{singular}s")
    return f"{n} {noun}"


def credits(n: int) -> str:
    return count(n, "credit")

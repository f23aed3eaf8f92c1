"""User text given to a model is data, never instructions (pure).

The defence has four parts, applied everywhere a user's words reach a model:

1. the system prompt is a constant of the code, never formatted with user text;
2. user text is cleaned: control characters (except newline and tab), format characters
   (zero-width, bidirectional overrides, the invisible Unicode tag block that can smuggle
   hidden instructions) and unassigned or private-use code points are removed;
3. it is length-capped, and placed between delimiters whose closing tag cannot be forged
   from inside (angle brackets in user text are replaced by look-alikes);
4. the model's answer is parsed against a schema and validated, so it can only ever fill
   the fields we asked for.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sized
from typing import Final, TypeVar

from ai.errors import InvalidInput

__all__ = ["clean_text", "delimit", "items_between", "require_text", "text_at_most"]

# Categories dropped from user text: Cc control, Cf format (ZWSP, bidi, tags), Co private
# use, Cs surrogates, Cn unassigned.
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_KEPT_CONTROLS: Final = frozenset({"\n", "\t"})
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")
_TAG_NAME = re.compile(r"^[a-z][a-z_]{0,30}$")


def clean_text(text: str) -> str:
    """``text`` without invisible or control characters, with normalised whitespace."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept = "".join(
        ch
        for ch in text
        if ch in _KEPT_CONTROLS or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    kept = _SPACES.sub(" ", kept.replace("\t", " "))
    return _BLANK_LINES.sub("\n\n", kept).strip()


def require_text(text: str, *, field: str, max_chars: int, min_chars: int = 1) -> str:
    """Cleaned ``text``, or ``InvalidInput`` when it is empty or longer than ``max_chars``."""
    cleaned = clean_text(text)
    if len(cleaned) < min_chars:
        raise InvalidInput(f"{field} is empty", code="invalid_text")
    if len(cleaned) > max_chars:
        raise InvalidInput(f"{field} is longer than {max_chars} characters", code="text_too_long")
    return cleaned


def delimit(tag: str, text: str) -> str:
    """``<tag>text</tag>`` where ``text`` cannot close the tag or open another one."""
    if not _TAG_NAME.match(tag):
        raise ValueError(f"invalid delimiter tag {tag!r}")
    # Full-width look-alikes keep the text readable to the model but inert as markup.
    inert = text.replace("<", "\uff1c").replace(">", "\uff1e")
    return f"<{tag}>\n{inert}\n</{tag}>"


# Bounds for structured outputs, checked when the answer is parsed. They are validators rather
# than JSON-schema keywords on purpose: strict structured outputs accept only a subset of JSON
# Schema, so the schema sent stays plain and the bounds are enforced on our side.

S = TypeVar("S", bound=Sized)


def text_at_most(chars_max: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > chars_max:
            raise ValueError(f"longer than {chars_max} characters")
        return value

    return check


def items_between(low: int, high: int) -> Callable[[S], S]:
    def check(value: S) -> S:
        if not low <= len(value) <= high:
            raise ValueError(f"must have {low} to {high} items")
        return value

    return check

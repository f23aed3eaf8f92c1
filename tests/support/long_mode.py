"""Short or long runs of the fault and fuzz suites.

The normal test command runs every suite in its short mode, sized to keep CI fast.
``FLOWAI_LONG_TESTS=1`` selects the long mode: more examples, clients, cycles and kills.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

LONG_TESTS_ENV = "FLOWAI_LONG_TESTS"


def long_mode() -> bool:
    return os.environ.get(LONG_TESTS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def scale(short: T, long: T) -> T:
    """``long`` when the long mode is selected, else ``short``."""
    return long if long_mode() else short


def mode_name() -> str:
    return "long" if long_mode() else "short"

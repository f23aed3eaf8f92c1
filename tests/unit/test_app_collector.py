"""``flowai serve`` tunes the garbage collector once started (in a child: it is process-wide)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import gc
from server.app import _YOUNG_COLLECTION_THRESHOLD, _tune_collector
before = gc.get_threshold()
_tune_collector()
after = gc.get_threshold()
frozen = gc.get_freeze_count() > 0
print(before[0], after[0], before[1:] == after[1:], _YOUNG_COLLECTION_THRESHOLD, frozen)
"""


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    before, after, older_kept, threshold, frozen = done.stdout.split()
    assert (after, older_kept, frozen) == (threshold, "True", "True")
    assert int(after) > int(before)  # CPython's default is 700 (2,000 from 3.14)

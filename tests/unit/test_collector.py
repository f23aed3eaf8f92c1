"""The garbage collector of a ``flowai serve`` process: tuned once, and run while quiet."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from server.collector import collect_when_quiet, generation_due

_PROBE = """
import gc
from server.collector import YOUNG_COLLECTION_THRESHOLD, tune
before = gc.get_threshold()
tune()
after = gc.get_threshold()
frozen = gc.get_freeze_count() > 0
print(before[0], after[0], before[1:] == after[1:], YOUNG_COLLECTION_THRESHOLD, frozen)
"""


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    # In a child: the collector's settings are process-wide.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    before, after, older_kept, threshold, frozen = done.stdout.split()
    assert (after, older_kept, frozen) == (threshold, "True", "True")
    assert int(after) > int(before)  # CPython's default is 700 (2,000 from 3.14)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((5_000, 0, 0), 0),
        ((5_000, 9, 9), 0),  # a tenth young collection keeps the middle one within its threshold
        ((5_000, 10, 3), 1),  # one more young collection would make the next automatic a middle
        ((5_000, 10, 10), 1),  # never a full collection: CPython decides those
        ((5_000, 4, 11), 0),
        ((0, 0, 0), 0),
    ],
)
def test_the_generation_due_keeps_the_next_automatic_collection_young(
    counts: tuple[int, int, int], expected: int
) -> None:
    assert generation_due(counts, (20_000, 10, 10)) == expected


def test_after_the_chosen_collection_the_middle_generation_is_within_its_threshold() -> None:
    for middle in range(12):
        for oldest in range(13):
            chosen = generation_due((5_000, middle, oldest), (20_000, 10, 10))
            assert chosen in (0, 1)
            middle_after = 0 if chosen == 1 else middle + 1
            assert middle_after <= 10
            # Collecting the middle one when a young collection would do is work for nothing.
            assert chosen == 0 or middle + 1 > 10


@pytest.fixture
def young_generation() -> Iterator[list[list[int]]]:
    """5,000 container objects alive in a young generation no automatic collection empties
    while the test runs."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(1_000_000, *thresholds[1:])
    kept = [[i] for i in range(5_000)]
    try:
        yield kept
    finally:
        gc.set_threshold(*thresholds)


async def test_a_quiet_process_collects_its_young_generation(
    young_generation: list[list[int]],
) -> None:
    assert gc.get_count()[0] >= 5_000
    task = asyncio.create_task(collect_when_quiet(check_s=0.02, busy_max=0.5, young_min=1_000))
    try:
        deadline = time.monotonic() + 5
        while gc.get_count()[0] >= 1_000 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert gc.get_count()[0] < 1_000
    assert len(young_generation) == 5_000  # collected, not freed: they are in use


async def test_a_busy_process_is_left_to_the_automatic_collections(
    young_generation: list[list[int]],
) -> None:
    stop = threading.Event()

    def spin() -> None:  # another thread keeps the process busy
        while not stop.wait(0):
            sum(range(1_000))

    spinner = threading.Thread(target=spin)
    spinner.start()
    task = asyncio.create_task(collect_when_quiet(check_s=0.02, busy_max=0.5, young_min=1_000))
    try:
        counts = []
        for _ in range(25):  # half a second of looks
            await asyncio.sleep(0.02)
            counts.append(gc.get_count()[0])
    finally:
        task.cancel()
        stop.set()
        spinner.join()
    assert min(counts) > 2_500  # a collection would have emptied it

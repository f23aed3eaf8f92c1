"""The cyclic garbage collector of a ``flowai serve`` process: tuned once started, and run
while the process is quiet rather than in the middle of a burst.

CPython collects the young generation after a fixed number of net allocations of container
objects, wherever they happen. In a join storm that is mid-storm: a joiner keeps about 25 such
objects for as long as its connection lives, so a collection there walks thousands of objects
that are all still in use (8-11 ms in a 500-client storm, in about half of them) while every
joiner waits. Collecting when the process has been quiet for a moment starts each burst with
an empty young generation; V8 schedules its own collections into idle time the same way.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence

__all__ = [
    "QUIET_BUSY_MAX",
    "QUIET_CHECK_S",
    "QUIET_YOUNG_MIN",
    "YOUNG_COLLECTION_THRESHOLD",
    "collect_when_quiet",
    "generation_due",
    "tune",
]

# Net allocations of container objects between young collections (CPython's default: 700).
# A join storm allocates a few dozen per joiner, most of which live as long as the
# connection: a 500-client storm ran 18 collections (~10 ms, 7 % of its CPU), each walking
# objects that were still in use. Cyclic garbage waits for at most this many allocations
# longer (a few MB at worst).
YOUNG_COLLECTION_THRESHOLD = 20_000
# How often the process looks for a quiet moment, what counts as quiet (the share of one CPU
# it used since the last look), and how many young allocations make a collection worth it.
# A burst that began just before a look passes for quiet only if it has used under 5 ms of
# CPU: the collection then walks what those few milliseconds allocated, since the young
# generation was emptied at the last quiet look.
QUIET_CHECK_S = 0.1
QUIET_BUSY_MAX = 0.05
QUIET_YOUNG_MIN = 2_000


def tune() -> None:
    """Keep the start-up heap out of every later full garbage collection, and collect the
    young generation less often.

    The SDKs and their schemas leave ~190k long-lived objects; a full collection walks all of
    them (~130 ms here) and a join storm allocates enough to trigger one or two, stalling every
    connection. ``gc.freeze`` moves them to a generation the collector skips (what CPython's
    documentation suggests for servers whose start-up heap lives as long as the process). The
    older generations keep their thresholds, which count young collections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def generation_due(counts: Sequence[int], thresholds: Sequence[int]) -> int:
    """The generation to collect now, 0 or 1: the middle one when one more young collection
    would make the next automatic collection a middle one (each young collection counts one
    towards it). Never the oldest: CPython starts a full collection only once the objects that
    survived since the last one reach a quarter of those it kept then, and a full collection of
    a large heap is a long pause, quiet process or not."""
    return 1 if counts[1] + 1 > thresholds[1] else 0


async def collect_when_quiet(
    *,
    check_s: float = QUIET_CHECK_S,
    busy_max: float = QUIET_BUSY_MAX,
    young_min: int = QUIET_YOUNG_MIN,
) -> None:
    """Forever: every ``check_s``, if the process used at most ``busy_max`` of a CPU since the
    last look and the young generation holds at least ``young_min`` allocations, collect (the
    generation ``generation_due`` names). Automatic collections stay on: a process that is
    never quiet is collected as before, and full collections are left to them."""
    cpu, wall = time.process_time(), time.monotonic()
    while True:
        await asyncio.sleep(check_s)
        cpu_now, wall_now = time.process_time(), time.monotonic()
        busy = (cpu_now - cpu) / max(wall_now - wall, 1e-9)
        counts = gc.get_count()
        if busy <= busy_max and counts[0] >= young_min:
            gc.collect(generation_due(counts, gc.get_threshold()))
            # The collection's own CPU is not the next interval's load.
            cpu_now = time.process_time()
        cpu, wall = cpu_now, wall_now

"""What a benchmark reads about another process from ``/proc``: CPU time and resident memory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cpu_s(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, in seconds, to the nanosecond: the sum of
    each thread's ``schedstat`` (``/proc/<pid>/stat`` counts in ticks of 10 ms, too coarse for
    a storm that costs a server 0.1 s). A thread that ended takes its time with it, which
    for the servers measured here (one event loop, a few helper threads) is negligible."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            total_ns += int((task / "schedstat").read_text().split()[0])
    return total_ns / 1e9


def cpu_ticks_s(pid: int) -> float:
    """CPU time of ``pid`` (user + system, every thread, ended ones included), in seconds."""
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"VmRSS not found for pid {pid}")


def load_average() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())

"""Time restoring a large timeline to a version that differs in about half of its clips.

Builds a timeline of N clips (default 5,000) on 10 tracks, and a version of it in which a
quarter of the clips moved, an eighth were trimmed, an eighth deleted and as many new ones
added. Then, on a replica that received the live document as updates (as the server holds
it), it times ``restore_update`` and applying the resulting update to a second replica, and
checks that both now read as the version. Runs a fixed number of rounds and prints the best
and median figures.

    python -m bench.restore_bench [--clips N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from pycrdt import Doc

from crdt.restore import restore_update
from crdt.timeline import (
    add_clip,
    add_track,
    delete_clip,
    move_clip,
    new_project_doc,
    read_timeline,
    trim_clip,
)

MAX_CLIPS = 50_000
TRACKS = 10


def build_live(clips: int) -> Doc[Any]:
    doc = new_project_doc("Benchmark")
    tracks = [add_track(doc, "video", f"Track {i}", track_id=f"t{i}") for i in range(TRACKS)]
    for i in range(clips):
        add_clip(
            doc,
            tracks[i % TRACKS],
            "video",
            start_ms=(i // TRACKS) * 1000,
            duration_ms=1000,
            clip_id=f"c{i}",
        )
    return doc


def build_version(live: Doc[Any], clips: int) -> Doc[Any]:
    """A copy of ``live`` in which about half of the clips differ."""
    version: Doc[Any] = Doc()
    version.apply_update(live.get_update())
    for i in range(clips):
        clip_id = f"c{i}"
        match i % 8:
            case 0 | 1:
                move_clip(version, clip_id, start_ms=(i // TRACKS) * 1000 + 500)
            case 2:
                trim_clip(version, clip_id, duration_ms=700, source_in_ms=300)
            case 3:
                delete_clip(version, clip_id)
                add_clip(version, "t0", "audio", start_ms=i, duration_ms=10, clip_id=f"n{i}")
            case _:
                pass
    return version


def replica_of(doc: Doc[Any]) -> Doc[Any]:
    replica: Doc[Any] = Doc()
    replica.apply_update(doc.get_update())
    return replica


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    clips = max(1, min(args.clips, MAX_CLIPS))
    rounds = max(1, min(args.rounds, 20))

    started = time.perf_counter()
    original = build_live(clips)
    version = build_version(original, clips)
    version_state = version.get_update()
    expected = read_timeline(version).to_json()
    print(f"built {clips} clips and a version in {time.perf_counter() - started:.2f} s")
    print(f"version state: {len(version_state) / 1024:.0f} KiB")

    restore_times: list[float] = []
    apply_times: list[float] = []
    update_size = 0
    for _ in range(rounds):
        live = replica_of(original)
        other = replica_of(original)
        t0 = time.perf_counter()
        update = restore_update(live, version_state)
        t1 = time.perf_counter()
        other.apply_update(update)
        t2 = time.perf_counter()
        restore_times.append(t1 - t0)
        apply_times.append(t2 - t1)
        update_size = len(update)
        assert read_timeline(other).to_json() == expected, "replica did not converge"
        assert read_timeline(live).to_json() == expected, "live did not reach the version"

    t0 = time.perf_counter()
    unchanged = restore_update(live, version_state)
    noop_time = time.perf_counter() - t0
    assert unchanged == b"\x00\x00"

    def fmt(values: list[float]) -> str:
        return f"best {min(values) * 1000:.0f} ms, median {statistics.median(values) * 1000:.0f} ms"

    print(f"restore_update:          {fmt(restore_times)} ({rounds} rounds)")
    print(f"apply on second replica: {fmt(apply_times)}")
    print(f"restore update size:     {update_size / 1024:.0f} KiB")
    print(f"restore to same version: {noop_time * 1000:.0f} ms (empty update)")


if __name__ == "__main__":
    main()

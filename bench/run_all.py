"""Run every benchmark in turn (``make bench``); each prints its table and writes
``bench/results/*.md``. About 30 minutes on two cores."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ("CPU speed", ["bench.cpu_speed"]),
    ("sync", ["bench.sync_bench"]),
    ("join cost", ["bench.join_cost"]),
    ("storms (Node load generator)", ["bench.storm_bench"]),
    ("fan-out", ["bench.fanout_bench"]),
    ("scaling across instances", ["bench.scaling_bench"]),
    ("cluster", ["bench.cluster_bench"]),
    ("persistence", ["bench.persistence_bench"]),
    ("restore", ["bench.restore_bench"]),
    ("billing", ["bench.bench_billing"]),
    ("render", ["bench.render_bench"]),
]


def main() -> int:
    failed = []
    for name, module in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", *module], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

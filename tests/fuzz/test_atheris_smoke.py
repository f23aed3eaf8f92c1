"""The coverage-guided frame fuzzer (fuzz/decoder_atheris.py) runs a bounded number of inputs
from a seed corpus and exits cleanly: no input made anything but ``ProtocolError`` escape."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.long_mode import scale

FUZZER = Path(__file__).resolve().parents[2] / "fuzz" / "decoder_atheris.py"
RUNS = scale(30_000, 2_000_000)

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None,
        reason="atheris is not installed (pip install atheris; wheels for CPython 3.11 on Linux)",
    ),
    pytest.mark.timeout(scale(120, 1800)),  # the long mode runs for minutes
]


def test_atheris_decoder_fuzzer_runs_clean(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run(
        [sys.executable, str(FUZZER), "--write-seeds", str(corpus)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # Crash artifacts land in the working directory: keep them in tmp_path.
    result = subprocess.run(
        [sys.executable, str(FUZZER), f"-runs={RUNS}", "-seed=1", "-print_final_stats=1",
         str(corpus)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=scale(120, 3600),
    )  # fmt: skip
    tail = "\n".join(result.stderr.splitlines()[-40:])
    assert result.returncode == 0, f"the fuzzer found a failing input:\n{tail}"
    assert f"Done {RUNS} runs" in result.stderr, tail
    assert not list(tmp_path.glob("crash-*"))
    stats = [line for line in result.stderr.splitlines() if line.startswith("stat::")]
    print(f"atheris: {RUNS} inputs, corpus {len(list(corpus.iterdir()))} files", *stats[:3])

"""The C load generators of ``bench/native/``: compiled on first use with the machine's C
compiler (``cc``, linked with libcrypto for the websocket handshake's SHA-1) into a cache
folder outside the repository, then run as ``bench.node_gen`` runs the Node scripts (same line
protocol on stdin and stdout).

No binary is committed: the source is the benchmark, and building it takes well under a
second. The cache is keyed by the source's hash, so an edited source is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import node_gen

NATIVE_DIR = Path(__file__).resolve().parent / "native"
CFLAGS = ("-O2", "-Wall", "-Wextra")
LIBS = ("-lcrypto",)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "flowai-bench"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"flowai-bench-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def build(name: str) -> Path:
    """``bench/native/<name>.c`` compiled (once per version of the source); its path."""
    source = NATIVE_DIR / f"{name}.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = cache_dir() / f"{name}-{digest}"
    if binary.exists():
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("the native load generator needs a C compiler (cc or gcc)")
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, *CFLAGS, "-o", str(partial), str(source), *LIBS],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"building {source.name} failed (it needs libcrypto's headers, Debian's "
            f"libssl-dev):\n{done.stderr[-2000:]}"
        )
    partial.replace(binary)  # atomic: a concurrent build never runs a half-written file
    return binary


async def start(name: str, count: int, *, cpus: set[int] | None) -> list[node_gen.Generator]:
    """``count`` processes of ``bench/native/<name>.c``, waiting for their first input."""
    return await node_gen.spawn([str(build(name)), "-"], count, cpus=cpus)

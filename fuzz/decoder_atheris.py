"""Coverage-guided fuzzing of the y-websocket frame decoder with atheris (libFuzzer).

Every input is decoded as a websocket frame (``decode_message``), its awareness payload (if
any) with ``decode_awareness``, and the raw input as an awareness payload too. ``ProtocolError``
is the only expected failure: anything else is a crash that libFuzzer reports with the input
that caused it (written as ``crash-<sha1>`` in the working directory).

    python fuzz/decoder_atheris.py --write-seeds fuzz/corpus   # once: valid frames to start from
    python fuzz/decoder_atheris.py -runs=1000000 fuzz/corpus   # fuzz, growing the corpus

Any libFuzzer flag works (``-max_total_time=600``, ``-jobs=2``, ``-max_len=65536``, ...).
See fuzz/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris

# Coverage feedback from our codec, pycrdt's Python-side decoder and the JSON parser only.
with atheris.instrument_imports(include=["crdt", "pycrdt", "json"]):
    from crdt.errors import ProtocolError
    from crdt.protocol import (
        AwarenessEntry,
        AwarenessUpdate,
        decode_awareness,
        decode_message,
        encode_auth_denied,
        encode_awareness,
        encode_awareness_message,
        encode_query_awareness,
        encode_saved,
        encode_sync_step1,
        encode_sync_step2,
        encode_update,
    )

# The server's default limit for one client's presence state.
STATE_BYTES_MAX = 64 * 1024


def _awareness(payload: bytes) -> None:
    try:
        decode_awareness(payload, state_bytes_max=STATE_BYTES_MAX)
    except ProtocolError:
        pass


def TestOneInput(data: bytes) -> None:  # the name libFuzzer's driver looks for
    try:
        message = decode_message(data)
    except ProtocolError:
        message = None
    if isinstance(message, AwarenessUpdate):
        _awareness(message.payload)
    _awareness(data)


def seeds() -> dict[str, bytes]:
    """One valid frame of each message type, for a starting corpus."""
    from pycrdt import Doc, Map

    doc: Doc[Any] = Doc(client_id=7)
    doc.get("clips", type=Map)["c1"] = Map({"kind": "video", "start_ms": 0, "duration_ms": 1000})
    presence = [AwarenessEntry(7, 3, '{"user":{"name":"Ana"},"cursor":null}')]
    return {
        "step1": encode_sync_step1(doc.get_state()),
        "step1-empty": encode_sync_step1(b"\x00"),
        "step2": encode_sync_step2(doc.get_update()),
        "update": encode_update(doc.get_update()),
        "awareness": encode_awareness_message(presence),
        "awareness-payload": encode_awareness(presence),
        "awareness-removed": encode_awareness_message([AwarenessEntry(7, 4, "null")]),
        "query-awareness": encode_query_awareness(),
        "auth-denied": encode_auth_denied("read-only"),
        "saved": encode_saved(doc.get_state()),
    }


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--write-seeds":
        corpus = Path(argv[2])
        corpus.mkdir(parents=True, exist_ok=True)
        for name, frame in seeds().items():
            (corpus / name).write_bytes(frame)
        return
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)

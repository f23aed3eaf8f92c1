"""The send budget of one connection, in bytes: pure.

Broadcast never waits for the slowest client: frames go straight into the connection's
transport buffer. A connection whose buffer would exceed its budget is closed instead of
buffered without limit (1013; the client resyncs on reconnect, so nothing is lost). A frame is
always admitted into an empty buffer, so a full state larger than the budget still reaches a
joiner.
"""

from __future__ import annotations


def send_admitted(buffered_bytes: int, frame_bytes: int, budget_bytes: int) -> bool:
    """Whether a frame of ``frame_bytes`` may be queued behind ``buffered_bytes``."""
    return buffered_bytes == 0 or buffered_bytes + frame_bytes <= budget_bytes

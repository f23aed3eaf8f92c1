"""Websocket connection ids: the shape of a uuid4's hex, never repeated, not shared with a
forked child."""

from __future__ import annotations

import os
import re

from server import log_context


def test_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [log_context.connection_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own_ids() -> None:
    parent = log_context.connection_id()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write_end, log_context.connection_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    next_parent = log_context.connection_id()
    assert re.fullmatch(r"[0-9a-f]{32}", child_id)
    # The child counts afresh, under a prefix of its own: its ids cannot meet the parent's.
    assert child_id[:20] != parent[:20]
    assert next_parent[:20] == parent[:20]

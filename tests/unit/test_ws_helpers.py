"""Pure helpers of the websocket endpoint: project ids, outgoing frames."""

from __future__ import annotations

import uuid

import pytest
from websockets.frames import Frame, Opcode

from server.ws.connection import _project_id, _wire

ID = uuid.UUID("f9bf5576-461d-43e0-b9f6-e3f1f7977fdd")


@pytest.mark.parametrize(
    "spelled", [str(ID), str(ID).upper(), ID.hex, f"{{{ID}}}", f"urn:uuid:{ID}"]
)
def test_every_spelling_of_a_uuid_gives_the_canonical_id(spelled: str) -> None:
    assert _project_id(spelled) == str(ID)


@pytest.mark.parametrize("spelled", ["", "nope", f"{ID}\n", f"{ID}x", str(ID)[:-1]])
def test_anything_else_is_not_a_project_id(spelled: str) -> None:
    assert _project_id(spelled) is None


def test_frames_are_encoded_as_websockets_does_and_the_last_two_reused() -> None:
    step1, step2, other = b"\x00\x00\x01\x00", b"\x00\x01" + bytes(300), b"\x00\x02\x00"
    first = {frame: _wire(frame) for frame in (step1, step2)}
    for frame, wire in first.items():
        assert wire == Frame(Opcode.BINARY, frame).serialize(mask=False)
    for _ in range(3):  # a join storm: the two shared frames in turn, never re-encoded
        assert _wire(step1) is first[step1]
        assert _wire(step2) is first[step2]
    assert _wire(other) == Frame(Opcode.BINARY, other).serialize(mask=False)
    assert _wire(step2) is first[step2]  # still one of the last two
    assert _wire(step1) is not first[step1]  # pushed out, encoded again
    assert _wire(bytes(step1)) == first[step1]

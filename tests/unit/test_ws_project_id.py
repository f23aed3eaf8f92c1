"""The project id of a join path, in canonical form."""

from __future__ import annotations

import uuid

import pytest

from server.ws import _project_id

ID = uuid.UUID("f9bf5576-461d-43e0-b9f6-e3f1f7977fdd")


@pytest.mark.parametrize(
    "spelled", [str(ID), str(ID).upper(), ID.hex, f"{{{ID}}}", f"urn:uuid:{ID}"]
)
def test_every_spelling_of_a_uuid_gives_the_canonical_id(spelled: str) -> None:
    assert _project_id(spelled) == str(ID)


@pytest.mark.parametrize("spelled", ["", "nope", f"{ID}\n", f"{ID}x", str(ID)[:-1]])
def test_anything_else_is_not_a_project_id(spelled: str) -> None:
    assert _project_id(spelled) is None

"""Pure helpers of the websocket endpoint: project ids, tokens, origins, outgoing frames."""

from __future__ import annotations

import uuid

import pytest
from websockets.frames import Frame, Opcode

from server.auth import AuthError
from server.ws.frames import origin_allowed, project_id, request_token, wire

ID = uuid.UUID("f9bf5576-461d-43e0-b9f6-e3f1f7977fdd")


@pytest.mark.parametrize(
    "spelled", [str(ID), str(ID).upper(), ID.hex, f"{{{ID}}}", f"urn:uuid:{ID}"]
)
def test_every_spelling_of_a_uuid_gives_the_canonical_id(spelled: str) -> None:
    assert project_id(spelled) == str(ID)


@pytest.mark.parametrize("spelled", ["", "nope", f"{ID}\n", f"{ID}x", str(ID)[:-1]])
def test_anything_else_is_not_a_project_id(spelled: str) -> None:
    assert project_id(spelled) is None


def test_frames_are_encoded_as_websockets_does_and_the_last_two_reused() -> None:
    step1, step2, other = b"\x00\x00\x01\x00", b"\x00\x01" + bytes(300), b"\x00\x02\x00"
    first = {frame: wire(frame) for frame in (step1, step2)}
    for frame, encoded in first.items():
        assert encoded == Frame(Opcode.BINARY, frame).serialize(mask=False)
    for _ in range(3):  # a join storm: the two shared frames in turn, never re-encoded
        assert wire(step1) is first[step1]
        assert wire(step2) is first[step2]
    assert wire(other) == Frame(Opcode.BINARY, other).serialize(mask=False)
    assert wire(step2) is first[step2]  # still one of the last two
    assert wire(step1) is not first[step1]  # pushed out, encoded again
    assert wire(bytes(step1)) == first[step1]


@pytest.mark.parametrize(
    ("query", "headers", "token"),
    [
        ([], [], None),
        (["a"], [], "a"),
        ([], ["Bearer a"], "a"),
        ([], ["bearer  a "], "a"),
        ([], ["Basic dXNlcg=="], None),  # not a bearer token: ignored, as before
        (["a"], ["Bearer a"], "a"),  # the same token twice
        (["a", "a"], [], "a"),
        ([""], ["Bearer a"], "a"),
    ],
)
def test_the_token_of_an_upgrade(query: list[str], headers: list[str], token: str | None) -> None:
    assert request_token(query, headers) == token


@pytest.mark.parametrize(
    ("query", "headers"),
    [(["a"], ["Bearer b"]), (["a", "b"], []), ([], ["Bearer a", "Bearer b"])],
)
def test_two_different_tokens_are_refused(query: list[str], headers: list[str]) -> None:
    with pytest.raises(AuthError) as err:
        request_token(query, headers)
    assert err.value.code == "token_ambiguous"


ALLOWED = frozenset({"https://app.example.com", "http://localhost:3000"})


@pytest.mark.parametrize(
    ("origins", "host", "allowed"),
    [
        ([], "api.example.com", True),  # no Origin: not a browser
        (["https://app.example.com"], "api.example.com", True),
        (["HTTPS://App.Example.com/"], "api.example.com", True),
        (["http://localhost:3000"], "127.0.0.1:8000", True),
        (["http://127.0.0.1:8000"], "127.0.0.1:8000", True),  # this server's own page
        (["https://evil.example"], "api.example.com", False),
        (["http://app.example.com"], "api.example.com", False),  # another scheme
        (["https://app.example.com:444"], "api.example.com", False),
        (["null"], "api.example.com", False),
        (["https://app.example.com", "https://evil.example"], "api.example.com", False),
        (["http://[::1"], "api.example.com", False),  # does not parse
        (["https://evil.example"], "", False),
    ],
)
def test_origins(origins: list[str], host: str, allowed: bool) -> None:
    assert origin_allowed(origins, host, ALLOWED) is allowed


def test_no_allow_list_allows_every_origin() -> None:
    assert origin_allowed(["https://evil.example"], "api.example.com", frozenset())

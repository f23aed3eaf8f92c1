"""The quick HS256 check: takes the common valid token, and nothing PyJWT would refuse."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import jwt
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from server.auth import mint_token
from server.auth_hs256 import HS256Check, _KeyedSha256, _segment

SECRET = "unit-test-secret-with-enough-length-000"
LEEWAY_S = 30
CHECK = HS256Check(SECRET.encode(), "authenticated", None, LEEWAY_S)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: dict[str, object], claims: dict[str, object], secret: str = SECRET) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.digest(secret.encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(signature)}"


def _pyjwt(token: str, check: HS256Check = CHECK) -> tuple[str, int]:
    claims = jwt.decode(
        token,
        check.key,
        algorithms=["HS256"],
        audience=check.audience,
        issuer=check.issuer,
        leeway=check.leeway_s,
        options={"require": ["exp", "sub"], "verify_aud": check.audience is not None},
    )
    return claims["sub"], claims["exp"]


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "alice",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_takes_a_minted_token_as_pyjwt_does() -> None:
    token = mint_token(SECRET, "alice")
    assert CHECK.accepted(token, time.time()) == _pyjwt(token)


def test_takes_supabase_shaped_headers_and_audience_lists() -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    for claims in (_claims(), _claims(aud=["other", "authenticated"]), _claims(jti="j-1")):
        token = _token(header, claims)
        assert CHECK.accepted(token, time.time()) == _pyjwt(token)


def test_a_header_is_remembered_only_from_a_token_it_took_and_spares_nothing_else() -> None:
    check = HS256Check(SECRET.encode(), "authenticated", None, LEEWAY_S)
    header = {"alg": "HS256", "typ": "JWT"}
    forged = _token(header, _claims(), "another-secret-of-enough-length-0000000")
    assert check.accepted(forged, time.time()) is None
    assert not check._known_headers  # a bad signature teaches nothing
    assert check.accepted(_token(header, _claims()), time.time()) is not None
    assert len(check._known_headers) == 1
    # A known header skips only its own decoding: signature and claims are still checked.
    assert check.accepted(forged, time.time()) is None
    assert check.accepted(_token(header, _claims(aud="anon")), time.time()) is None
    for kid in range(40):
        check.accepted(_token({**header, "kid": str(kid)}, _claims()), time.time())
    assert len(check._known_headers) == 16


def test_checks_the_issuer_when_one_is_set() -> None:
    check = HS256Check(SECRET.encode(), None, "https://x.supabase.co/auth/v1", LEEWAY_S)
    good = _token({"alg": "HS256"}, _claims(iss="https://x.supabase.co/auth/v1"))
    assert check.accepted(good, time.time()) == _pyjwt(good, check)
    assert check.accepted(_token({"alg": "HS256"}, _claims(iss="other")), time.time()) is None
    assert check.accepted(_token({"alg": "HS256"}, _claims()), time.time()) is None


@pytest.mark.parametrize(
    ("header", "claims", "secret"),
    [
        ({"alg": "HS256"}, _claims(), "another-secret-of-enough-length-0000000"),
        ({"alg": "HS384"}, _claims(), SECRET),
        ({"alg": "none"}, _claims(), SECRET),
        ({"alg": "HS256", "crit": ["b64"], "b64": False}, _claims(), SECRET),
        ({"alg": "HS256", "kid": 7}, _claims(), SECRET),
        ({"alg": "HS256"}, _claims(exp=int(time.time()) - LEEWAY_S - 5), SECRET),
        ({"alg": "HS256"}, _claims(exp=str(int(time.time()) + 60)), SECRET),
        ({"alg": "HS256"}, _claims(exp=True), SECRET),
        ({"alg": "HS256"}, _claims(exp=time.time() + 60.5), SECRET),
        ({"alg": "HS256"}, _claims(iat=int(time.time()) + 3600), SECRET),
        ({"alg": "HS256"}, _claims(nbf=int(time.time()) + 3600), SECRET),
        ({"alg": "HS256"}, _claims(sub=""), SECRET),
        ({"alg": "HS256"}, _claims(sub=42), SECRET),
        ({"alg": "HS256"}, _claims(aud="anon"), SECRET),
        ({"alg": "HS256"}, _claims(aud=["authenticated", 1]), SECRET),
        ({"alg": "HS256"}, _claims(jti=5), SECRET),
    ],
)
def test_leaves_every_doubtful_token_to_pyjwt(
    header: dict[str, object], claims: dict[str, object], secret: str
) -> None:
    assert CHECK.accepted(_token(header, claims, secret), time.time()) is None


def test_leaves_non_canonical_segments_to_pyjwt() -> None:
    token = mint_token(SECRET, "alice")
    head, payload, signature = token.split(".")
    for spelled in (
        f"{head}.{payload}.{signature}=",
        f"{head}.{payload}.{signature} ",
        f"{head}.{payload}",
        f"{head}.{payload}.{signature}.",
        f"{head}.{payload}.{signature[:-1]}{'B' if signature[-1] == 'A' else 'A'}",
        f"{head}.{payload}+.{signature}",
    ):
        assert CHECK.accepted(spelled, time.time()) is None


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.sampled_from(["authenticated", "anon", 3]), max_size=3),
)
# Times relative to now, kept clear of the leeway's edge by a second.
_offsets = st.sampled_from([-7200, -LEEWAY_S - 1, -LEEWAY_S + 1, 0, 60, 7200])


@st.composite
def _tokens(draw: st.DrawFn) -> str:
    """A valid token with a few of its header fields, claims or key changed."""
    now = int(time.time())
    header: dict[str, object] = {"alg": "HS256", "typ": "JWT"}
    claims = _claims()
    changes = draw(st.sets(st.sampled_from(["alg", "typ", "kid", "crit", "x5u"])))
    for name in changes:
        header[name] = draw(st.one_of(st.sampled_from(["HS256", "HS512", "JWT"]), _values))
    for name in draw(st.sets(st.sampled_from(["sub", "aud", "jti", "iss", "exp", "iat", "nbf"]))):
        if draw(st.booleans()):
            claims.pop(name, None)
        else:
            claims[name] = draw(
                st.one_of(_values, _offsets.map(lambda o: now + o), _offsets.map(str))
            )
    secret = draw(st.sampled_from([SECRET, SECRET, SECRET + "x"]))
    return _token(header, claims, secret)


def test_the_generated_tokens_include_ones_it_takes_and_ones_it_leaves() -> None:
    def taken(token: str) -> bool:
        return CHECK.accepted(token, time.time()) is not None

    assert taken(find(_tokens(), taken))
    assert not taken(find(_tokens(), lambda t: not taken(t)))


@settings(max_examples=400, deadline=None)
@given(_tokens())
def test_anything_it_takes_pyjwt_takes_with_the_same_subject_and_expiry(token: str) -> None:
    quick = CHECK.accepted(token, time.time())
    if quick is not None:
        assert _pyjwt(token) == quick


def _segment_by_round_trip(text: str) -> bytes | None:
    """The canonical unpadded base64url segment's bytes, found the slow, plain way."""
    if not text or any(c not in _BASE64URL for c in text) or len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=").decode() == text else None


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=2000)
@given(
    st.one_of(
        st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()),
        st.text(alphabet=_BASE64URL + "=+/. *\n\x00é", max_size=12),
    )
)
def test_a_segment_is_decoded_only_in_its_canonical_spelling(text: str) -> None:
    assert _segment(text) == _segment_by_round_trip(text)


def test_segments_with_stray_low_bits_are_not_decoded() -> None:
    assert _segment("QQ") == b"A" and _segment("QR") is None and _segment("QUI") == b"AB"
    assert _segment("QUJ") is None and _segment("QUJD") == b"ABC" and _segment("Q") is None


def _raw_token(payload: bytes) -> str:
    """A token whose payload segment is ``payload`` as it is, correctly signed."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(payload)}"
    signature = hmac.digest(SECRET.encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(signature)}"


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-16"),
        lambda text: text.encode("utf-32"),
        lambda text: b"\xef\xbb\xbf" + text.encode(),  # UTF-8 with a byte order mark
    ],
    ids=["utf-16", "utf-32", "utf-8-bom"],
)
def test_leaves_payloads_that_are_not_plain_utf8_to_pyjwt(
    encode: Callable[[str], bytes],
) -> None:
    token = _raw_token(encode(json.dumps(_claims())))
    assert CHECK.accepted(token, time.time()) is None
    # PyJWT reads such a payload (json.loads sniffs the encoding): it decides, not the check.
    assert _pyjwt(token)[0] == "alice"


def test_leaves_a_payload_that_is_not_unicode_to_pyjwt() -> None:
    token = _raw_token(b'{"sub": "\xff", "exp": 4102444800}')
    assert CHECK.accepted(token, time.time()) is None
    with pytest.raises(jwt.PyJWTError):
        _pyjwt(token)


@settings(max_examples=300)
@given(st.binary(max_size=150), st.binary(max_size=300))
def test_the_prepared_mac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    # Keys shorter than, as long as and longer than SHA-256's 64-byte block.
    assert _KeyedSha256(key).digest(message) == hmac.digest(key, message, hashlib.sha256)


@pytest.mark.parametrize("length", [32, 63, 64, 65, 200])
def test_takes_tokens_signed_with_keys_around_the_block_size(length: int) -> None:
    secret = "k" * length  # PyJWT warns of keys under 32 bytes
    check = HS256Check(secret.encode(), "authenticated", None, LEEWAY_S)
    token = mint_token(secret, "alice")
    assert check.accepted(token, time.time()) == _pyjwt(token, check)
    assert check.accepted(mint_token(secret + "x", "alice"), time.time()) is None


@pytest.mark.parametrize("padding", [" ", "\n", "\t "])
def test_leaves_a_payload_with_whitespace_around_it_to_pyjwt(padding: str) -> None:
    token = _raw_token(f"{padding}{json.dumps(_claims())}{padding}".encode())
    assert CHECK.accepted(token, time.time()) is None
    assert _pyjwt(token)[0] == "alice"


def test_leaves_a_payload_with_text_after_its_object_to_pyjwt() -> None:
    token = _raw_token(json.dumps(_claims()).encode() + b"{}")
    assert CHECK.accepted(token, time.time()) is None
    with pytest.raises(jwt.PyJWTError):
        _pyjwt(token)

"""Access tokens: HS256 with the shared secret, RS256/ES256 through a local JWKS endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server import auth
from server.auth import AuthError, Identity, TokenVerifier, mint_token

SECRET = "unit-test-secret-with-enough-length-000"


def _claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "alice", "aud": "authenticated", "iat": now, "exp": now + 86_400, **extra}


@pytest.fixture
def jwks() -> Iterator[tuple[str, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key, alg in (("r1", rsa_key, "RS256"), ("e1", ec_key, "ES256")):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json", rsa_key, ec_key
    server.shutdown()
    server.server_close()


async def test_hs256_minted_token_round_trips() -> None:
    verifier = TokenVerifier(SECRET, audience="authenticated")
    identity = await verifier.verify(mint_token(SECRET, "alice"))
    assert identity.user_id == "alice"


async def test_jwks_rs256_and_es256(
    jwks: tuple[str, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey],
) -> None:
    url, rsa_key, ec_key = jwks
    verifier = TokenVerifier(SECRET, audience="authenticated", jwks_url=url)
    rs = jwt.encode(_claims(sub="rita"), rsa_key, algorithm="RS256", headers={"kid": "r1"})
    es = jwt.encode(_claims(sub="ed"), ec_key, algorithm="ES256", headers={"kid": "e1"})
    assert (await verifier.verify(rs)).user_id == "rita"
    assert (await verifier.verify(es)).user_id == "ed"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(), other, algorithm="RS256", headers={"kid": "r1"})
    with pytest.raises(AuthError) as err:
        await verifier.verify(forged)
    assert err.value.code == "token_invalid"


def _unsigned(claims: dict[str, object]) -> str:
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "token_missing"),
        ("", "token_missing"),
        ("garbage", "token_invalid"),
        (_unsigned(_claims()), "token_invalid"),  # alg=none
        (jwt.encode(_claims(), SECRET * 2, algorithm="HS512"), "token_invalid"),  # wrong algorithm
        (
            jwt.encode(_claims(), "wrong-secret-of-enough-length-0000000", algorithm="HS256"),
            "token_invalid",
        ),
        (
            jwt.encode(_claims(exp=int(time.time()) - 3600), SECRET, algorithm="HS256"),
            "token_expired",
        ),
        (
            jwt.encode(_claims(nbf=int(time.time()) + 3600), SECRET, algorithm="HS256"),
            "token_invalid",
        ),
        (jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"), "token_invalid"),
        (
            jwt.encode(
                {k: v for k, v in _claims().items() if k != "sub"}, SECRET, algorithm="HS256"
            ),
            "token_invalid",
        ),
        (
            jwt.encode(
                {k: v for k, v in _claims().items() if k != "exp"}, SECRET, algorithm="HS256"
            ),
            "token_invalid",
        ),
        (jwt.encode(_claims(sub=""), SECRET, algorithm="HS256"), "token_invalid"),
        (jwt.encode(_claims(sub=42), SECRET, algorithm="HS256"), "token_invalid"),
    ],
)
async def test_bad_tokens_are_refused(token: str | None, code: str) -> None:
    verifier = TokenVerifier(SECRET, audience="authenticated")
    with pytest.raises(AuthError) as err:
        await verifier.verify(token)
    assert err.value.code == code


async def test_asymmetric_token_without_jwks_is_refused(
    jwks: tuple[str, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey],
) -> None:
    _, rsa_key, _ = jwks
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "r1"})
    with pytest.raises(AuthError):
        await TokenVerifier(SECRET, audience="authenticated").verify(token)


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_cached_verification_still_honours_expiry() -> None:
    clock = ManualClock()
    verifier = TokenVerifier(SECRET, audience="authenticated", leeway_s=0, clock=clock)
    token = mint_token(SECRET, "alice", ttl_s=60)
    assert (await verifier.verify(token)).user_id == "alice"
    clock.now += 59
    assert (await verifier.verify(token)).user_id == "alice"  # from the cache
    clock.now += 2  # past its expiry: neither the cache nor a fresh check accepts it
    with pytest.raises(AuthError) as err:
        await verifier.verify(token)
    assert err.value.code == "token_expired"
    with pytest.raises(AuthError) as err:
        await verifier.verify(token)
    assert err.value.code == "token_expired"


def test_a_full_cache_of_verified_tokens_drops_the_oldest() -> None:
    verifier = TokenVerifier(SECRET, audience="authenticated")
    count = auth._VERIFIED_CACHE_MAX + 10
    tokens = [mint_token(SECRET, f"user-{i}") for i in range(count)]
    for token in tokens:
        verifier.verify_now(token)
    cached = list(verifier._verified)
    assert len(cached) == auth._VERIFIED_CACHE_MAX
    assert cached == tokens[10:]  # the first ten went, oldest first
    assert verifier.verify_now(tokens[0]) == Identity(user_id="user-0")  # verified again
    assert tokens[10] not in verifier._verified and tokens[0] in verifier._verified


async def test_expiry_is_checked_against_the_verifiers_clock_for_every_token() -> None:
    clock = ManualClock()
    verifier = TokenVerifier(SECRET, audience="authenticated", leeway_s=30, clock=clock)
    # A header the quick check does not take: PyJWT decodes that one (with its own clock).
    token = jwt.encode(_claims(exp=int(clock.now) + 60), SECRET, algorithm="HS256")
    odd = jwt.encode(
        _claims(exp=int(clock.now) + 60), SECRET, algorithm="HS256", headers={"x": "1"}
    )
    clock.now += 60 + 31  # beyond the leeway
    for expired in (token, odd):
        with pytest.raises(AuthError) as err:
            await verifier.verify(expired)
        assert err.value.code == "token_expired"


async def test_overlong_tokens_are_refused_before_decoding() -> None:
    verifier = TokenVerifier(SECRET, audience="authenticated", token_bytes_max=1024)
    padded = mint_token(SECRET, "alice") + "A" * 2000  # would not decode anyway
    for token in (padded, "é" * 600):  # 1200 bytes in 600 characters
        with pytest.raises(AuthError) as err:
            verifier.verify_now(token)
        assert err.value.code == "token_too_long"
    # A valid token over the cap is refused too; under it, accepted.
    big = jwt.encode(_claims(pad="x" * 1200), SECRET, algorithm="HS256")
    with pytest.raises(AuthError) as err:
        await verifier.verify(big)
    assert err.value.code == "token_too_long"
    assert (await TokenVerifier(SECRET, audience="authenticated").verify(big)).user_id == "alice"


async def test_verify_now_checks_without_waiting_unless_a_key_must_be_fetched(
    jwks: tuple[str, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey],
) -> None:
    url, rsa_key, _ = jwks
    plain = TokenVerifier(SECRET, audience="authenticated")
    assert plain.verify_now(mint_token(SECRET, "alice")) == Identity("alice")
    with pytest.raises(AuthError) as err:
        plain.verify_now(jwt.encode(_claims(), rsa_key, algorithm="RS256"))
    assert err.value.code == "token_invalid"  # no JWKS: only HS256 verifies
    with pytest.raises(AuthError) as err:
        plain.verify_now(None)
    assert err.value.code == "token_missing"

    with_jwks = TokenVerifier(SECRET, audience="authenticated", jwks_url=url)
    rs = jwt.encode(_claims(sub="rita"), rsa_key, algorithm="RS256", headers={"kid": "r1"})
    assert with_jwks.verify_now(rs) is None  # its key may have to be fetched
    assert (await with_jwks.verify(rs)).user_id == "rita"
    assert with_jwks.verify_now(rs) == (await with_jwks.verify(rs))  # verified once: cached
    assert with_jwks.verify_now(mint_token(SECRET, "hal")) == Identity("hal")

"""Access tokens: Supabase-compatible JWTs.

HS256 tokens are checked against the project's shared secret; RS256/ES256 tokens against the
keys published at ``jwt_jwks_url`` (Supabase's asymmetric signing keys). ``sub`` is the user id;
``exp`` is required. Tokens are never logged; one longer than ``token_bytes_max`` is refused
before anything of it is decoded. Expiry is wall-clock time (``clock``, injectable for tests).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Container
from dataclasses import dataclass

import anyio
import jwt

from server.auth_hs256 import HS256Check

__all__ = ["AuthError", "Identity", "TokenVerifier", "mint_token"]

_ASYMMETRIC = ("RS256", "ES256", "EdDSA")
_VERIFIED_CACHE_MAX = 4096
# Supabase's access tokens are about 1 KiB; this leaves room for many more claims.
TOKEN_BYTES_MAX = 8 * 1024


class AuthError(Exception):
    """The token is missing or invalid. ``code`` is stable, ``str()`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str


class TokenVerifier:
    def __init__(
        self,
        secret: str,
        *,
        audience: str | None,
        issuer: str | None = None,
        jwks_url: str | None = None,
        leeway_s: int = 30,
        revoked: Container[str] = frozenset(),
        token_bytes_max: int = TOKEN_BYTES_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._audience = audience
        self._issuer = issuer
        self._leeway_s = leeway_s
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._hs256 = HS256Check(secret.encode(), audience, issuer, leeway_s)
        # Oldest first. An OrderedDict because a full cache drops its oldest entry on every
        # insert, and on a plain dict ``next(iter(...))`` walks past every slot freed at the
        # front since its last resize (2.5-4.7 µs an insert at 4,096 entries, against 0.8).
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._token_bytes_max = token_bytes_max
        # Seconds since the epoch, as ``exp`` counts them.
        self._clock = clock
        # Users whose tokens are refused before they expire (deleted accounts).
        self.revoked = revoked

    async def verify(self, token: str | None) -> Identity:
        identity = self.verify_now(token)
        if identity is not None:
            return identity
        assert token is not None  # verify_now refused a missing one
        key = await self._signing_key(token)
        return self._remember(token, *self._decode(token, self._unverified_alg(token), key))

    def verify_now(self, token: str | None) -> Identity | None:
        """``verify`` without waiting: None when the token is signed with a key that may have
        to be fetched first (JWKS), which ``verify`` does. Raises ``AuthError`` like it."""
        if not token:
            raise AuthError("token_missing", "an access token is required")
        if len(token) > self._token_bytes_max or (
            not token.isascii() and len(token.encode()) > self._token_bytes_max
        ):
            raise AuthError(
                "token_too_long", f"access tokens are at most {self._token_bytes_max} bytes"
            )
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None:
            identity, exp = cached
            if now < exp + self._leeway_s:
                return self._not_revoked(identity)
            del self._verified[token]
        quick = self._hs256.accepted(token, now)
        if quick is not None:
            sub, exp = quick
            return self._remember(token, Identity(user_id=sub), float(exp))
        if self._jwks is None:
            # Only HS256 can verify, and PyJWT checks the algorithm while decoding: the header
            # is not parsed on its own first. Parsing is most of the cost of a check (PyJWT
            # validates every character of every segment), and a join storm checks one token
            # per joiner.
            alg = "HS256"
        else:
            alg = self._unverified_alg(token)
            if alg in _ASYMMETRIC:
                return None
            if alg != "HS256":
                raise AuthError("token_invalid", f"tokens signed with {alg!r} are not accepted")
        return self._remember(token, *self._decode(token, alg, self._secret))

    def _remember(self, token: str, identity: Identity, exp: float) -> Identity:
        self._not_revoked(identity)
        # Reconnect and join storms present the same tokens again and again; a signature
        # that verified once stays valid until the token expires.
        if len(self._verified) >= _VERIFIED_CACHE_MAX:
            self._verified.popitem(last=False)
        self._verified[token] = (identity, exp)
        return identity

    def _not_revoked(self, identity: Identity) -> Identity:
        if identity.user_id in self.revoked:
            raise AuthError("token_revoked", "this user's access has been revoked")
        return identity

    @staticmethod
    def _unverified_alg(token: str) -> str:
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise AuthError("token_invalid", "the access token is malformed") from exc
        return str(alg)

    def _decode(self, token: str, alg: str, key: object) -> tuple[Identity, float]:
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "the access token has expired") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError("token_invalid", f"only {alg} tokens are accepted") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("token_invalid", f"the access token is invalid: {exc}") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token_invalid", "the access token has no subject")
        # PyJWT checked the times against its own clock; this holds them to ours as well.
        exp = float(claims["exp"])
        if exp <= self._clock() - self._leeway_s:
            raise AuthError("token_expired", "the access token has expired")
        return Identity(user_id=sub), exp

    async def _signing_key(self, token: str) -> object:
        assert self._jwks is not None
        jwks = self._jwks
        try:
            # PyJWKClient fetches with urllib (blocking); keys are cached after the first call.
            signing_key = await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWTError as exc:
            raise AuthError("token_invalid", f"no matching signing key: {exc}") from exc
        return signing_key.key


def mint_token(
    secret: str, user_id: str, *, ttl_s: int = 3600, audience: str | None = "authenticated"
) -> str:
    """An HS256 token shaped like Supabase's (``sub``, ``role``, ``aud``, ``iat``, ``exp``)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "role": "authenticated", "iat": now}
    claims["exp"] = now + ttl_s
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")

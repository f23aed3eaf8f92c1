"""A quick check of the common HS256 access token, ahead of PyJWT.

A join storm checks one new token per joiner, and PyJWT spends about 80-120 µs on an HS256
token (option merging, per-character segment checks, the key's PEM sniffing on every call),
a fifth of a join's CPU; the signature itself is a few microseconds. No maintained JWT library
for this Python is faster (the fast ones are Rust builds for 3.12 and later).

So this accepts only what is plainly valid: a Supabase-shaped token (header of ``alg`` HS256
and at most ``typ`` and ``kid``; canonical base64url segments; an integer ``exp``, a string
``sub``) whose signature and claims check out. It never refuses: anything else, including
every invalid token, returns None and goes to PyJWT, which decides and words the error. What
it accepts, PyJWT with the same settings accepts too, with the same subject and expiry (a
property test pins this).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import string
from dataclasses import dataclass, field
from json.scanner import make_scanner

# JSONDecoder.raw_decode without its Python frame: the scanner it calls (``(value, end)``,
# StopIteration when no value starts at the index). typeshed types the argument as a scanner;
# it is the decoder whose settings the scanner reads, as ``JSONDecoder`` itself passes it.
_SCAN = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_HEADER_KEYS = frozenset(("alg", "typ", "kid"))
# Headers of accepted tokens remembered as such (an issuer uses one or a few; decoding one is a
# third of a check). Only a token whose signature checked out adds one, so only the holder of
# the key can fill this.
_KNOWN_HEADERS_MAX = 16


@dataclass(frozen=True, slots=True)
class HS256Check:
    """What a token must match: the key and the claims the verifier is configured with."""

    key: bytes
    audience: str | None
    issuer: str | None
    leeway_s: float
    _known_headers: set[str] = field(default_factory=set, compare=False, repr=False)
    _mac: _KeyedSha256 = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mac", _KeyedSha256(self.key))

    def accepted(self, token: str, now: float) -> tuple[str, int] | None:
        """``(sub, exp)`` of a token that is certainly valid at ``now``, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header_b64, payload_b64, signature_b64 = parts
        known = header_b64 in self._known_headers
        if not known and not _header_accepted(header_b64):
            return None
        signature = _segment(signature_b64)
        expected = self._mac.digest(f"{header_b64}.{payload_b64}".encode())
        if signature is None or not hmac.compare_digest(signature, expected):
            return None
        claims = _json_segment(payload_b64)
        if claims is None:
            return None
        identity = self._claims_accepted(claims, now)
        if identity is not None and not known and len(self._known_headers) < _KNOWN_HEADERS_MAX:
            self._known_headers.add(header_b64)
        return identity

    def _claims_accepted(self, claims: dict[str, object], now: float) -> tuple[str, int] | None:
        sub, exp = claims.get("sub"), claims.get("exp")
        if not isinstance(sub, str) or not sub or type(exp) is not int:
            return None
        if exp <= now - self.leeway_s:
            return None
        for claim in ("iat", "nbf"):
            if claim in claims:
                value = claims[claim]
                if type(value) is not int or value > now + self.leeway_s:
                    return None
        if "jti" in claims and not isinstance(claims["jti"], str):
            return None
        if self.audience is not None and not _audience_matches(claims.get("aud"), self.audience):
            return None
        if self.issuer is not None and claims.get("iss") != self.issuer:
            return None
        return sub, exp


class _KeyedSha256:
    """HMAC-SHA256 under one key, its padded-key hash states computed once (RFC 2104).

    ``hmac.digest`` sets up OpenSSL's HMAC for the key on every call: 3 µs a token, against 1
    for copying the two prepared states (the construction the standard library's own
    ``hmac.HMAC`` uses without OpenSSL)."""

    __slots__ = ("_inner", "_outer")

    _BLOCK = 64  # SHA-256's block size in bytes

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _header_accepted(header_b64: str) -> bool:
    header = _json_segment(header_b64)
    return (
        header is not None
        and header.get("alg") == "HS256"
        and header.keys() <= _HEADER_KEYS
        and all(isinstance(header.get(k, ""), str) for k in ("typ", "kid"))
    )


# base64url to the standard alphabet binascii decodes, and what a base64url segment cannot hold
# ("+", "/", "=") to a byte that strict decoding refuses.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
# The padding of a segment by its length modulo 4 (1 cannot end one).
_PADDING = (b"", b"", b"==", b"=")
# By a segment's length modulo 4 (2 or 3: one or two bytes in its last group), the last
# characters whose unused low bits are zero: those of the canonical spelling. A segment that
# ends otherwise decodes too, to the same bytes as its canonical twin; it is not taken here.
_CANONICAL_LAST = {
    0: frozenset(string.ascii_letters + string.digits + "-_"),
    2: frozenset("AQgw"),
    3: frozenset("AEIMQUYcgkosw048"),
}


def _segment(text: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url segment, else None."""
    rest = len(text) % 4
    if rest == 1 or not text or not text.isascii() or text[-1] not in _CANONICAL_LAST[rest]:
        return None
    # Strict decoding checks the alphabet as it decodes (a regular expression first cost as
    # much as the decoding).
    try:
        return binascii.a2b_base64(
            text.encode("ascii").translate(_TO_STANDARD) + _PADDING[rest], strict_mode=True
        )
    except binascii.Error:
        return None


def _json_segment(text: str) -> dict[str, object] | None:
    data = _segment(text)
    if data is None:
        return None
    try:
        # Decoded first: given bytes, json.loads sniffs for UTF-16 and UTF-32 in Python, which
        # doubled its cost. A payload in those (or with a BOM) is not taken here; PyJWT decides.
        text = data.decode("utf-8")
        # The scanner is json.loads without its two whitespace scans (a third of its cost for
        # a token's claims); a payload with whitespace around its object is left to PyJWT.
        value, end = _SCAN(text, 0)
    except (ValueError, StopIteration):  # not UTF-8, or not JSON
        return None
    return value if end == len(text) and isinstance(value, dict) else None


def _audience_matches(claim: object, audience: str) -> bool:
    if isinstance(claim, str):
        return claim == audience
    return (
        isinstance(claim, list)
        and all(isinstance(item, str) for item in claim)
        and audience in claim
    )

"""Fractional index keys: strings that sort between two others, for ordering without renumbering.

A key is a non-empty string over the base-62 alphabet ``0-9A-Za-z``, whose characters are in
ascending ASCII order, so keys compare correctly with plain ``str`` comparison (no custom
collation needed in Python, JS or SQL). Reading a key as the fraction ``0.d1d2d3...`` in base
62, ``key_between`` picks the digit midpoint of the two bounds and only grows the key by one
digit when the bounds are adjacent. Keys produced here never end in ``0``, which keeps room
below every key (nothing sorts strictly between ``"a"`` and ``"a0"``).
"""

from __future__ import annotations

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE = len(DIGITS)
_ZERO = DIGITS[0]
_VALUE = {digit: value for value, digit in enumerate(DIGITS)}


def is_valid_key(key: object) -> bool:
    """True for a non-empty string made only of base-62 digits."""
    return isinstance(key, str) and key != "" and all(c in _VALUE for c in key)


def key_between(a: str | None, b: str | None) -> str:
    """Return a key ``k`` with ``a < k < b`` in plain string order (``None`` is an open end).

    Raises ``ValueError`` if a bound is not a valid key, if ``a >= b``, or if no key fits
    (``b`` is ``a`` followed only by zeros, e.g. ``("a", "a00")``, or ``b`` is all zeros).
    """
    for bound in (a, b):
        if bound is not None and not is_valid_key(bound):
            raise ValueError(f"not a fractional index key: {bound!r}")
    if a is not None and b is not None and a >= b:
        raise ValueError(f"lower bound {a!r} is not below upper bound {b!r}")
    key = _midpoint(a or "", b)
    # The construction guarantees this; the check keeps a bad key from ever reaching a doc.
    if (a is not None and not a < key) or (b is not None and not key < b):
        raise ValueError(f"no key between {a!r} and {b!r}")
    return key


def spread_keys(n: int) -> list[str]:
    """``n`` ascending keys spread evenly over the key space, for renumbering a whole list.

    Keys have the same width before trailing zeros are stripped, so stripping keeps them
    distinct and ordered, and leaves room between any two and at both ends.
    """
    if n < 0:
        raise ValueError(f"cannot make {n} keys")
    width = 1
    while _BASE**width <= n:
        width += 1
    step = _BASE**width // (n + 1)
    return [_digits((i + 1) * step, width).rstrip(_ZERO) for i in range(n)]


def _digits(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, _BASE)
        out.append(DIGITS[digit])
    return "".join(reversed(out))


def _midpoint(a: str, b: str | None) -> str:
    """Digit-wise midpoint of ``a`` (right-padded with zeros) and ``b`` (``None`` = 1.0)."""
    out: list[str] = []
    while True:
        if b is not None:
            # Copy the common prefix; a missing digit of ``a`` counts as zero.
            n = 0
            while n < len(b) and (a[n] if n < len(a) else _ZERO) == b[n]:
                n += 1
            if n == len(b):
                raise ValueError("no key fits below the upper bound")
            out.append(b[:n])
            a, b = a[n:], b[n:]
        low = _VALUE[a[0]] if a else 0
        high = _VALUE[b[0]] if b is not None else _BASE
        if high - low > 1:
            out.append(DIGITS[(low + high + 1) // 2])
            return "".join(out)
        if b is not None and len(b) > 1:
            # Adjacent first digits but ``b`` continues: its first digit alone is below ``b``.
            out.append(b[0])
            return "".join(out)
        # Adjacent digits and nothing left in ``b``: keep ``a``'s digit and go one level deeper,
        # where only ``a`` bounds us.
        out.append(DIGITS[low])
        a, b = a[1:], None

"""Test vectors for the TypeScript fractional index keys, made by ``crdt.fractional_index``.

Writes ``client/test/vectors/fractional_index.json``; the TS tests check ``keyBetween``,
``spreadKeys`` and ``isValidKey`` against it, and ``tests/client/test_vectors.py`` fails when the
committed file no longer matches what the Python module produces.

    PYTHONPATH=. python client/scripts/gen_fractional_index_vectors.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from crdt.fractional_index import DIGITS, is_valid_key, key_between, spread_keys

VECTORS_PATH = Path(__file__).resolve().parents[1] / "test" / "vectors" / "fractional_index.json"
SEED = 20261202

# Bounds chosen by hand: open ends, adjacent digits, the ends of the alphabet, trailing zeros,
# keys no key fits between, invalid keys and reversed bounds.
_EDGE_PAIRS: list[tuple[Any, Any]] = [
    (None, None),
    (None, "V"),
    ("V", None),
    ("a", "b"),
    ("a", "c"),
    ("a", "a1"),
    ("a", "a01"),
    ("a", "a00"),
    ("a", "a0"),
    (None, "0"),
    (None, "00"),
    (None, "01"),
    (None, "1"),
    ("z", None),
    ("zz", None),
    ("y", "z"),
    ("yz", "z"),
    ("0", "1"),
    ("01", "02"),
    ("0z", "1"),
    ("A", "a"),
    ("Zz", "a"),
    ("a", "a"),
    ("b", "a"),
    ("", None),
    (None, ""),
    ("a-", None),
    ("é", None),
    ("a", "az"),
    ("az", "b"),
    ("azzzz", "b"),
    ("a", "a000001"),
    ("9", "A"),
    ("Z", "a"),
]


def _case(a: Any, b: Any) -> dict[str, Any]:
    try:
        return {"a": a, "b": b, "key": key_between(a, b)}
    except ValueError:
        return {"a": a, "b": b, "error": True}


def _random_key(rng: random.Random) -> str:
    key = "".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 6)))
    return key.rstrip("0") or rng.choice(DIGITS[1:])


def _chains() -> list[dict[str, Any]]:
    """Repeated appends, prepends and inserts at one spot (how keys grow in real use)."""
    cases = []
    high: str | None = None
    low: str | None = None
    for _ in range(60):
        cases.append(_case(low, None))
        low = key_between(low, None)
    for _ in range(60):
        cases.append(_case(None, high))
        high = key_between(None, high)
    a, b = "a", "b"
    for _ in range(60):
        case = _case(a, b)
        cases.append(case)
        a = case["key"]
    a, b = "a", "b"
    for _ in range(60):
        case = _case(a, b)
        cases.append(case)
        b = case["key"]
    return cases


def vectors() -> dict[str, Any]:
    rng = random.Random(SEED)  # noqa: S311 (reproducible vectors, not secrets)
    between = [_case(a, b) for a, b in _EDGE_PAIRS]
    for _ in range(300):
        x, y = sorted({_random_key(rng), _random_key(rng)})
        between.append(_case(x, y) if x != y else _case(x, None))
    between.extend(_chains())
    sizes = (0, 1, 2, 3, 5, 10, 61, 62, 63, 100, 3843, 3844)
    spread = {str(n): spread_keys(n) for n in sizes}
    valid_inputs: list[Any] = ["a", "0", "zz", "", "a b", "é", "-", "A9z", 5, None, ["a"], True]
    return {
        "generator": "client/scripts/gen_fractional_index_vectors.py",
        "key_between": between,
        "spread_keys": spread,
        "is_valid_key": [{"input": value, "valid": is_valid_key(value)} for value in valid_inputs],
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    VECTORS_PATH.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_PATH.write_text(render(vectors()), encoding="utf-8")
    print(f"wrote {VECTORS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

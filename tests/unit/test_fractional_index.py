from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.fractional_index import DIGITS, is_valid_key, key_between, spread_keys

# Keys as this module produces them: valid digits, no trailing zero.
keys = st.text(alphabet=DIGITS, min_size=1, max_size=12).filter(lambda k: not k.endswith("0"))
# Any valid key, including ones with trailing zeros (the npm library's "a0" style).
any_keys = st.text(alphabet=DIGITS, min_size=1, max_size=12)

HYPOTHESIS = settings(max_examples=300, database=None, deadline=None)


def test_alphabet_is_in_ascii_order() -> None:
    assert list(DIGITS) == sorted(DIGITS)
    assert len(set(DIGITS)) == 62


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (None, None, "V"),
        ("V", None, "l"),
        (None, "V", "G"),
        ("a", "b", "aV"),
        ("a", "c", "b"),
        ("a", "a1", "a0V"),
        ("az", "b", "azV"),
        ("z", None, "zV"),
        ("a0", "a1", "a0V"),
        ("49", "5", "4a"),
        ("1", "2V", "2"),
    ],
)
def test_known_midpoints(a: str | None, b: str | None, expected: str) -> None:
    assert key_between(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("b", "a"),
        ("a", "a"),
        ("a", "a0"),
        ("a", "a00"),
        (None, "0"),
        (None, "000"),
        ("", None),
        (None, ""),
        ("a-b", None),
        (None, "é"),
    ],
)
def test_impossible_or_invalid_bounds_raise(a: str | None, b: str | None) -> None:
    with pytest.raises(ValueError):
        key_between(a, b)


def test_is_valid_key() -> None:
    assert is_valid_key("a0V")
    assert not is_valid_key("")
    assert not is_valid_key("a b")
    assert not is_valid_key(3)
    assert not is_valid_key(None)


@given(keys, keys)
@HYPOTHESIS
def test_between_two_keys(x: str, y: str) -> None:
    if x == y:
        return
    a, b = min(x, y), max(x, y)
    k = key_between(a, b)
    assert a < k < b
    assert is_valid_key(k)
    assert not k.endswith("0")


@given(any_keys, any_keys)
@HYPOTHESIS
def test_arbitrary_valid_bounds_never_return_a_wrong_key(x: str, y: str) -> None:
    a, b = min(x, y), max(x, y)
    try:
        k = key_between(a, b)
    except ValueError:
        # Only when nothing fits: b is a followed by zeros.
        assert b == a or (b.startswith(a) and set(b[len(a) :]) == {"0"})
    else:
        assert a < k < b


@given(keys)
@HYPOTHESIS
def test_open_ends(a: str) -> None:
    assert key_between(a, None) > a
    assert key_between(None, a) < a


@given(st.lists(st.sampled_from(["append", "prepend", "first_gap", "last_gap"]), max_size=200))
@settings(max_examples=50, database=None, deadline=None)
def test_random_insert_sequences_stay_ordered(ops: list[str]) -> None:
    order = [key_between(None, None)]
    for op in ops:
        if op == "append":
            order.append(key_between(order[-1], None))
        elif op == "prepend":
            order.insert(0, key_between(None, order[0]))
        elif op == "first_gap" and len(order) > 1:
            order.insert(1, key_between(order[0], order[1]))
        elif op == "last_gap" and len(order) > 1:
            order.insert(len(order) - 1, key_between(order[-2], order[-1]))
    assert order == sorted(order)
    assert len(set(order)) == len(order)


def test_long_chain_at_the_same_spot() -> None:
    # Always inserting right after the same key: the worst case for key growth.
    low, high = "V", "W"
    chain = []
    for _ in range(2000):
        high = key_between(low, high)
        chain.append(high)
    assert chain == sorted(chain, reverse=True)
    assert all(low < k for k in chain)
    assert len(chain[-1]) < 400


def test_long_append_and_prepend_chains() -> None:
    appended = [key_between(None, None)]
    prepended = [appended[0]]
    for _ in range(1000):
        appended.append(key_between(appended[-1], None))
        prepended.append(key_between(None, prepended[-1]))
    assert appended == sorted(appended)
    assert prepended == sorted(prepended, reverse=True)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 61, 62, 63, 500, 4000])
def test_spread_keys(n: int) -> None:
    spread = spread_keys(n)
    assert len(spread) == n
    assert spread == sorted(set(spread))
    assert all(is_valid_key(k) and not k.endswith("0") for k in spread)
    # Room around every key.
    bounds = [None, *spread, None]
    for low, high in itertools.pairwise(bounds):
        if low is not None or high is not None:
            key_between(low, high)


def test_spread_keys_rejects_negative() -> None:
    with pytest.raises(ValueError):
        spread_keys(-1)

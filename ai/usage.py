"""What a job consumed at its providers, and what that costs in credits (pure).

A job may use several products (dubbing: transcription, translation and speech), so usage is
``product -> meter -> quantity`` and the charge is the sum of every product's provider cost,
plus the margin, rounded up once for the whole job, exactly as ``billing.prices`` rounds a
single product.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from billing.prices import CREDIT_USD, Meter, PriceTable

__all__ = ["Usage", "credits_for"]


class Usage:
    """A mutable tally of provider usage; integers only, like the price table."""

    def __init__(self, counts: Mapping[str, Mapping[Meter, int]] | None = None) -> None:
        self._counts: dict[str, dict[Meter, int]] = {}
        for product, meters in (counts or {}).items():
            for meter, quantity in meters.items():
                self.add(product, meter, quantity)

    @classmethod
    def of(cls, product: str, meter: Meter, quantity: int) -> Usage:
        usage = cls()
        usage.add(product, meter, quantity)
        return usage

    def add(self, product: str, meter: Meter, quantity: int) -> None:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"usage of {meter.label} must be a non-negative integer")
        meters = self._counts.setdefault(product, {})
        meters[meter] = meters.get(meter, 0) + quantity

    def merge(self, other: Usage) -> Usage:
        for product, meters in other.items():
            for meter, quantity in meters.items():
                self.add(product, meter, quantity)
        return self

    def items(self) -> list[tuple[str, dict[Meter, int]]]:
        return [(p, dict(m)) for p, m in sorted(self._counts.items())]

    def get(self, product: str, meter: Meter) -> int:
        return self._counts.get(product, {}).get(meter, 0)

    def __bool__(self) -> bool:
        return any(q for meters in self._counts.values() for q in meters.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Usage({self.to_json()!r})"

    def to_json(self) -> dict[str, dict[str, int]]:
        return {p: {m.value: q for m, q in sorted(ms.items())} for p, ms in self.items()}

    @classmethod
    def from_json(cls, value: Any) -> Usage:
        usage = cls()
        if not isinstance(value, Mapping):
            return usage
        for product, meters in value.items():
            if isinstance(meters, Mapping):
                for meter, quantity in meters.items():
                    usage.add(str(product), Meter(meter), int(quantity))
        return usage


def credits_for(prices: PriceTable, usage: Usage) -> int:
    """The charge for ``usage``: provider cost plus margin, rounded up once (``UnknownPrice``
    when a product has no row in the price table)."""
    cost = sum((prices.cost_usd(product, meters) for product, meters in usage.items()), Fraction(0))
    return math.ceil(cost * (100 + prices.margin_percent) / 100 / CREDIT_USD)

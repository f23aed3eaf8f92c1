"""The price table: exact arithmetic, rounding up once per request, the margin, the docs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import InvalidRequest, UnknownPrice
from billing.prices import CREDIT_USD, MARGIN_PERCENT_DEFAULT, PRICES, Meter, PriceTable, UnitPrice

ROOT = Path(__file__).resolve().parents[2]


def test_one_credit_is_one_cent() -> None:
    assert Fraction(1, 100) == CREDIT_USD


def test_prices_are_exact_and_sourced() -> None:
    for price in PRICES:
        assert type(price.usd) is Fraction and price.usd > 0
        assert isinstance(price.per, int) and price.per >= 1
        assert price.source.startswith("https://")
    metered = {p.meter for p in PRICES}
    assert metered == set(Meter)


def test_transcription_is_rounded_up_to_whole_credits() -> None:
    prices = PriceTable(margin_percent=30)
    # 10 minutes of whisper-1: $0.06, plus 30% = $0.078 -> 7.8 credits -> 8.
    assert prices.cost_usd("openai/whisper-1", {Meter.AUDIO_SECONDS: 600}) == Fraction("0.06")
    assert prices.credits("openai/whisper-1", {Meter.AUDIO_SECONDS: 600}) == 8


def test_text_tokens_sum_input_and_output_before_rounding() -> None:
    prices = PriceTable(margin_percent=0)
    usage = {Meter.INPUT_TOKENS: 1_000_000, Meter.OUTPUT_TOKENS: 1_000_000}
    assert prices.cost_usd("openai/gpt-4o-mini", usage) == Fraction("0.75")
    assert prices.credits("openai/gpt-4o-mini", usage) == 75
    # A small request still costs one credit: the charge never rounds down to zero.
    assert prices.credits("openai/gpt-4o-mini", {Meter.INPUT_TOKENS: 1}) == 1
    assert prices.credits("openai/gpt-4o-mini", {Meter.INPUT_TOKENS: 0}) == 0


def test_a_request_is_rounded_once_not_per_unit() -> None:
    prices = PriceTable(margin_percent=0)
    # $0.011 an image: three images cost $0.033 -> 4 credits, not 3 x 2.
    assert prices.credits("openai/gpt-image-1:low", {Meter.IMAGES: 3}) == 4
    assert prices.credits("openai/gpt-image-1:medium", {Meter.IMAGES: 100}) == 420


def test_speech_render_and_voice_clone_prices() -> None:
    prices = PriceTable(margin_percent=30)
    # 1,000 characters on Multilingual v2: $0.10 -> 13 credits with the margin.
    assert prices.credits("elevenlabs/eleven_multilingual_v2", {Meter.CHARACTERS: 1000}) == 13
    # 300 billed Lambda seconds at 2048 MB: $0.01 -> 1.3 -> 2 credits.
    assert prices.credits("remotion/lambda-2048mb", {Meter.RENDER_SECONDS: 300}) == 2
    # One voice clone: $22 / 30 slots = $0.7333.. -> 95.33 -> 96 credits.
    assert prices.credits("elevenlabs/instant-voice-clone", {Meter.VOICE_CLONES: 1}) == 96


def test_the_margin_is_a_setting() -> None:
    usage = {Meter.IMAGES: 100}
    assert PriceTable(margin_percent=0).credits("openai/gpt-image-1:high", usage) == 1670
    assert PriceTable(margin_percent=50).credits("openai/gpt-image-1:high", usage) == 2505
    assert PriceTable().margin_percent == MARGIN_PERCENT_DEFAULT
    for bad in (-1, 1001, True, 1.5):
        with pytest.raises(InvalidRequest):
            PriceTable(margin_percent=bad)  # type: ignore[arg-type]


def test_unknown_products_and_meters_are_errors() -> None:
    prices = PriceTable()
    with pytest.raises(UnknownPrice, match="no price"):
        prices.credits("openai/gpt-9", {Meter.INPUT_TOKENS: 1})
    with pytest.raises(KeyError):
        prices.credits("openai/whisper-1", {Meter.IMAGES: 1})


@pytest.mark.parametrize("quantity", [-1, 10**13, 1.5, True])
def test_usage_must_be_a_bounded_integer(quantity: object) -> None:
    with pytest.raises(InvalidRequest):
        PriceTable().credits("openai/whisper-1", {Meter.AUDIO_SECONDS: quantity})  # type: ignore[dict-item]


def test_a_table_refuses_duplicate_or_invalid_prices() -> None:
    price = UnitPrice("p", Meter.IMAGES, Fraction(1), 1, "https://example.com")
    with pytest.raises(ValueError, match="two prices"):
        PriceTable(prices=[price, price])
    with pytest.raises(ValueError, match="invalid"):
        PriceTable(prices=[UnitPrice("p", Meter.IMAGES, Fraction(1), 0, "https://x")])


@given(
    product=st.sampled_from(sorted({(p.product, p.meter) for p in PRICES})),
    quantity=st.integers(min_value=0, max_value=10**9),
    margin=st.integers(min_value=0, max_value=300),
)
def test_charges_cover_cost_and_margin_by_less_than_one_credit(
    product: tuple[str, Meter], quantity: int, margin: int
) -> None:
    name, meter = product
    prices = PriceTable(margin_percent=margin)
    charged = prices.credits(name, {meter: quantity}) * CREDIT_USD
    owed = prices.cost_usd(name, {meter: quantity}) * (100 + margin) / 100
    assert owed <= charged < owed + CREDIT_USD


def test_the_documented_table_is_the_code() -> None:
    table = PriceTable().markdown()
    assert table.count("\n") == len(PRICES) + 2
    assert "| `openai/whisper-1` | 60 audio seconds | $0.006 | 0.78 |" in table
    documents = [ROOT / "README.md", ROOT / "docs" / "billing.md"]
    texts = [path.read_text() for path in documents if path.exists()]
    assert any(table in text for text in texts), "README price table is out of date"

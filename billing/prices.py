"""What each AI and render operation costs in credits: the one price table of the product.

1 credit = US$0.01. A charge is the provider's cost of the usage, plus the margin (a setting,
``margin_percent``), converted to credits and rounded up once per request, so a request never
costs less than what the provider bills for it. All arithmetic is exact (integers and
``fractions.Fraction`` built from decimal strings); there are no floats.

Provider prices are the public list prices of each provider's official pricing page, standard
(non-batch) tier, as listed in 2026; when a provider changes a price, change the row here and
the table in the README (``flowai credits prices`` prints it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Final

from billing.errors import InvalidRequest, UnknownPrice

__all__ = [
    "CREDIT_USD",
    "MARGIN_PERCENT_DEFAULT",
    "PRICES",
    "Meter",
    "PriceTable",
    "UnitPrice",
]

CREDIT_USD: Final = Fraction(1, 100)
MARGIN_PERCENT_DEFAULT: Final = 30
MARGIN_PERCENT_MAX: Final = 1000
USAGE_MAX: Final = 10**12


class Meter(StrEnum):
    """What a provider counts. The value is the unit name used in usage reports."""

    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    AUDIO_SECONDS = "audio_seconds"  # transcription: seconds of audio sent
    CHARACTERS = "characters"  # speech synthesis: characters of text sent
    IMAGES = "images"
    RENDER_SECONDS = "render_seconds"  # Lambda seconds billed for a render (all functions)
    VOICE_CLONES = "voice_clones"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """The provider charges ``usd`` for ``per`` units of ``meter`` of ``product``."""

    product: str
    meter: Meter
    usd: Fraction
    per: int
    source: str


def usd(decimal: str) -> Fraction:
    """An exact amount of dollars from its decimal text (never through a float)."""
    return Fraction(decimal)


_OPENAI = "https://openai.com/api/pricing"
_ELEVENLABS = "https://elevenlabs.io/pricing/api"

PRICES: Final[tuple[UnitPrice, ...]] = (
    # Text generation (scripts, titles, translation), per 1M tokens.
    UnitPrice("openai/gpt-4o-mini", Meter.INPUT_TOKENS, usd("0.15"), 1_000_000, _OPENAI),
    UnitPrice("openai/gpt-4o-mini", Meter.OUTPUT_TOKENS, usd("0.60"), 1_000_000, _OPENAI),
    UnitPrice("openai/gpt-4.1-mini", Meter.INPUT_TOKENS, usd("0.40"), 1_000_000, _OPENAI),
    UnitPrice("openai/gpt-4.1-mini", Meter.OUTPUT_TOKENS, usd("1.60"), 1_000_000, _OPENAI),
    UnitPrice("openai/gpt-4o", Meter.INPUT_TOKENS, usd("2.50"), 1_000_000, _OPENAI),
    UnitPrice("openai/gpt-4o", Meter.OUTPUT_TOKENS, usd("10.00"), 1_000_000, _OPENAI),
    # Transcription (subtitles, dubbing), quoted per minute of audio, billed by the second.
    UnitPrice("openai/whisper-1", Meter.AUDIO_SECONDS, usd("0.006"), 60, _OPENAI),
    UnitPrice("openai/gpt-4o-transcribe", Meter.AUDIO_SECONDS, usd("0.006"), 60, _OPENAI),
    UnitPrice("openai/gpt-4o-mini-transcribe", Meter.AUDIO_SECONDS, usd("0.003"), 60, _OPENAI),
    # Speech synthesis (voice-over, dubbing), per 1K characters of text.
    UnitPrice(
        "elevenlabs/eleven_multilingual_v2", Meter.CHARACTERS, usd("0.10"), 1000, _ELEVENLABS
    ),
    UnitPrice("elevenlabs/eleven_v3", Meter.CHARACTERS, usd("0.10"), 1000, _ELEVENLABS),
    UnitPrice("elevenlabs/eleven_flash_v2_5", Meter.CHARACTERS, usd("0.05"), 1000, _ELEVENLABS),
    UnitPrice("openai/tts-1", Meter.CHARACTERS, usd("15.00"), 1_000_000, _OPENAI),
    # Images (thumbnails), per 1024x1024 image by quality.
    UnitPrice("openai/gpt-image-1:low", Meter.IMAGES, usd("0.011"), 1, _OPENAI),
    UnitPrice("openai/gpt-image-1:medium", Meter.IMAGES, usd("0.042"), 1, _OPENAI),
    UnitPrice("openai/gpt-image-1:high", Meter.IMAGES, usd("0.167"), 1, _OPENAI),
    # Rendering on Remotion Lambda: AWS Lambda x86 in us-east-1 costs $0.0000166667 per
    # GB-second (https://aws.amazon.com/lambda/pricing/); Remotion's default function has
    # 2048 MB, so a billed second costs $0.0000333334. Usage is the render's summed billed
    # duration (``estimatedBillingDurationInMilliseconds``), in seconds, rounded up.
    UnitPrice(
        "remotion/lambda-2048mb",
        Meter.RENDER_SECONDS,
        usd("0.0000166667") * 2 * 1000,
        1000,
        "https://www.remotion.dev/docs/lambda/cost-example",
    ),
    # Instant voice clones: ElevenLabs has no per-clone fee; clones occupy custom-voice slots,
    # 30 of them in the $22/month Creator plan, so one clone is priced as one slot-month.
    UnitPrice(
        "elevenlabs/instant-voice-clone",
        Meter.VOICE_CLONES,
        Fraction(22, 30),
        1,
        "https://elevenlabs.io/pricing",
    ),
)


@dataclass(frozen=True, slots=True)
class PriceRow:
    price: UnitPrice
    credits: Fraction  # for ``price.per`` units, margin included, before rounding


class PriceTable:
    """Prices with the margin applied. Build one from settings and pass it where it is needed."""

    def __init__(
        self,
        margin_percent: int = MARGIN_PERCENT_DEFAULT,
        prices: Iterable[UnitPrice] = PRICES,
    ) -> None:
        if isinstance(margin_percent, bool) or not isinstance(margin_percent, int):
            raise InvalidRequest("margin_percent must be an integer")
        if not 0 <= margin_percent <= MARGIN_PERCENT_MAX:
            raise InvalidRequest(f"margin_percent must be between 0 and {MARGIN_PERCENT_MAX}")
        self.margin_percent = margin_percent
        self._prices: dict[tuple[str, Meter], UnitPrice] = {}
        for price in prices:
            if (price.product, price.meter) in self._prices:
                raise ValueError(f"two prices for {price.product} {price.meter}")
            if price.usd < 0 or price.per < 1:
                raise ValueError(f"invalid price for {price.product} {price.meter}")
            self._prices[(price.product, price.meter)] = price

    def unit_price(self, product: str, meter: Meter) -> UnitPrice:
        try:
            return self._prices[(product, meter)]
        except KeyError:
            raise UnknownPrice(f"no price for {meter.label} of {product!r}") from None

    def cost_usd(self, product: str, usage: Mapping[Meter, int]) -> Fraction:
        """What the provider bills for ``usage`` of ``product``, exactly."""
        total = Fraction(0)
        for meter, quantity in usage.items():
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise InvalidRequest(f"{meter.label} must be an integer")
            if not 0 <= quantity <= USAGE_MAX:
                raise InvalidRequest(f"{meter.label} must be between 0 and {USAGE_MAX}")
            price = self.unit_price(product, meter)
            total += price.usd * quantity / price.per
        return total

    def credits(self, product: str, usage: Mapping[Meter, int]) -> int:
        """The charge in credits: cost plus margin, rounded up once for the whole request."""
        return math.ceil(self._with_margin(self.cost_usd(product, usage)) / CREDIT_USD)

    def rows(self) -> list[PriceRow]:
        return [PriceRow(p, self._with_margin(p.usd) / CREDIT_USD) for p in self._prices.values()]

    def markdown(self) -> str:
        """The price table as shown in the README."""
        lines = [
            f"| Product | Unit | Provider price (USD) | Credits (margin {self.margin_percent}%) |",
            "|---|---|---|---:|",
        ]
        for row in self.rows():
            p = row.price
            unit = f"{_count(p.per)} {p.meter.label}" if p.per > 1 else _singular(p.meter)
            lines.append(
                f"| `{p.product}` | {unit} | {_money(p.usd)} | {_decimal(row.credits, 4)} |"
            )
        return "\n".join(lines) + "\n"

    def _with_margin(self, cost: Fraction) -> Fraction:
        return cost * (100 + self.margin_percent) / 100


def _count(n: int) -> str:
    return f"{n:,}"


def _singular(meter: Meter) -> str:
    return {"images": "1 image", "voice_clones": "1 voice clone"}.get(meter.value, meter.label)


def _money(value: Fraction) -> str:
    """Dollars with at least cents: $0.60, $0.0333334, ≈$0.7333333."""
    text = _decimal(value, 7)
    approx = text.startswith("≈")
    whole, _, cents = text.removeprefix("≈").partition(".")
    return ("≈$" if approx else "$") + f"{whole}.{cents.ljust(2, '0')}"


def _decimal(value: Fraction, places: int) -> str:
    """``value`` as decimal text, rounded half up to ``places``, trailing zeros dropped."""
    scaled = value * 10**places
    units = math.floor(scaled + Fraction(1, 2))
    whole, frac = divmod(units, 10**places)
    text = f"{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")
    return ("≈" if scaled != units else "") + text

"""ElevenLabs through the official SDK: speech synthesis and instant voice cloning.

The SDK retries 429 and 5xx twice by default; paid calls here run with ``max_retries`` 0 (at
most 1) so that the job's retry policy decides, and every call carries an explicit timeout.
The characters ElevenLabs billed come back in the ``character-cost`` response header, which
is what the job captures; ElevenLabs counts those in its own credits, which cost half a credit
per character on the Flash and Turbo models, so the header is converted back to characters of
text (the unit of our price table) with ``_CREDITS_PER_CHARACTER``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import anyio
import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.request_options import RequestOptions

from ai.errors import (
    ProviderError,
    ProviderMalformed,
    ProviderRejected,
    ProviderTimeout,
    ProviderTransient,
)
from ai.ports import ClonedVoice, SpeechResult
from ai.usage import Usage
from billing.prices import Meter

__all__ = [
    "ElevenLabsCloner",
    "ElevenLabsConfig",
    "ElevenLabsSpeech",
    "elevenlabs_client",
    "map_elevenlabs_error",
]

PROVIDER: Final = "elevenlabs"
CLONE_PRODUCT: Final = "elevenlabs/instant-voice-clone"
SDK_RETRIES_MAX: Final = 1
OUTPUT_FORMAT: Final = "mp3_44100_128"
AUDIO_BYTES_MAX: Final = 32 * 1024 * 1024
_CREDITS_PER_CHARACTER: Final = {
    "eleven_flash_v2_5": Fraction(1, 2),
    "eleven_flash_v2": Fraction(1, 2),
    "eleven_turbo_v2_5": Fraction(1, 2),
    "eleven_turbo_v2": Fraction(1, 2),
}
_TRANSIENT_STATUSES: Final = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class ElevenLabsConfig:
    api_key: str
    base_url: str | None
    max_retries: int
    tts_model: str
    default_voice_id: str
    tts_timeout_s: float
    clone_timeout_s: float


def elevenlabs_client(
    config: ElevenLabsConfig, http: httpx.AsyncClient | None = None
) -> AsyncElevenLabs:
    """The SDK client; pass ``http`` to own (and close) its connection pool."""
    kwargs: dict[str, Any] = {"api_key": config.api_key, "timeout": config.tts_timeout_s}
    if http is not None:
        kwargs["httpx_client"] = http
    if config.base_url:
        kwargs["base_url"] = config.base_url
    return AsyncElevenLabs(**kwargs)


def _options(config: ElevenLabsConfig, timeout_s: float) -> RequestOptions:
    return {
        "timeout_in_seconds": max(1, math.ceil(timeout_s)),
        "max_retries": min(max(config.max_retries, 0), SDK_RETRIES_MAX),
    }


def map_elevenlabs_error(exc: Exception) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(PROVIDER, "the request timed out")
    if isinstance(exc, httpx.TransportError):
        return ProviderTransient(PROVIDER, "could not reach the API")
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        if 200 <= status < 300:
            return ProviderMalformed(PROVIDER, "the response could not be parsed", status=status)
        if status >= 500 or status in _TRANSIENT_STATUSES:
            retry_after = (exc.headers or {}).get("retry-after")
            return ProviderTransient(
                PROVIDER,
                f"HTTP {status}",
                status=status,
                retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        return ProviderRejected(PROVIDER, f"HTTP {status}: {str(exc.body)[:300]}", status=status)
    return ProviderMalformed(PROVIDER, f"unexpected {type(exc).__name__}")


_SDK_ERRORS: Final = (ApiError, httpx.HTTPError, ValueError)


class ElevenLabsSpeech:
    def __init__(self, client: AsyncElevenLabs, config: ElevenLabsConfig) -> None:
        self._client = client
        self._config = config

    @property
    def product(self) -> str:
        return f"{PROVIDER}/{self._config.tts_model}"

    @property
    def default_voice_id(self) -> str:
        return self._config.default_voice_id

    def _billed_characters(self, header: str | None, text: str) -> int:
        if header is None or not header.strip().isdigit():
            return len(text)  # What ElevenLabs documents it bills when no header is sent.
        credits = int(header.strip())
        per_char = _CREDITS_PER_CHARACTER.get(self._config.tts_model, Fraction(1))
        return math.ceil(credits / per_char)

    async def synthesize(self, text: str, *, voice_id: str, language: str | None) -> SpeechResult:
        extra: dict[str, Any] = {"language_code": language} if language else {}
        try:
            async with self._client.text_to_speech.with_raw_response.convert(
                voice_id,
                text=text,
                model_id=self._config.tts_model,
                output_format=OUTPUT_FORMAT,
                request_options=_options(self._config, self._config.tts_timeout_s),
                **extra,
            ) as response:
                header = response.headers.get("character-cost")
                audio = bytearray()
                async for chunk in response.data:
                    audio += chunk
                    if len(audio) > AUDIO_BYTES_MAX:
                        raise ProviderMalformed(PROVIDER, "the audio is larger than expected")
        except _SDK_ERRORS as exc:
            raise map_elevenlabs_error(exc) from exc
        if not audio:
            raise ProviderMalformed(PROVIDER, "the response has no audio")
        characters = self._billed_characters(header, text)
        return SpeechResult(
            audio=bytes(audio), usage=Usage.of(self.product, Meter.CHARACTERS, characters)
        )


class ElevenLabsCloner:
    def __init__(self, client: AsyncElevenLabs, config: ElevenLabsConfig) -> None:
        self._client = client
        self._config = config

    async def clone(
        self, *, name: str, description: str | None, samples: Sequence[Path]
    ) -> ClonedVoice:
        files = [
            (path.name, await anyio.Path(path).read_bytes(), "application/octet-stream")
            for path in samples
        ]
        extra: dict[str, Any] = {"description": description} if description else {}
        try:
            created = await self._client.voices.ivc.create(
                name=name,
                files=files,
                request_options=_options(self._config, self._config.clone_timeout_s),
                **extra,
            )
        except _SDK_ERRORS as exc:
            raise map_elevenlabs_error(exc) from exc
        if not created.voice_id:
            raise ProviderMalformed(PROVIDER, "the response has no voice id")
        return ClonedVoice(
            provider_voice_id=created.voice_id,
            requires_verification=bool(created.requires_verification),
            usage=Usage.of(CLONE_PRODUCT, Meter.VOICE_CLONES, 1),
        )

    async def delete(self, provider_voice_id: str) -> None:
        try:
            await self._client.voices.delete(
                provider_voice_id,
                request_options=_options(self._config, self._config.clone_timeout_s),
            )
        except ApiError as exc:
            if exc.status_code in (400, 404):
                return  # Already gone at the provider.
            raise map_elevenlabs_error(exc) from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise map_elevenlabs_error(exc) from exc

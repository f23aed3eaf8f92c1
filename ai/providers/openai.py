"""OpenAI through the official SDK: structured text, transcription, images.

Every call has an explicit timeout (the SDK's default is 600 s) and the SDK's own retries are
off by default (``max_retries``, at most 1): a retried transcription or image is billed twice,
so the job's retry policy decides instead. SDK errors become ``ai.errors`` errors; usage comes
from the response (tokens, audio seconds, images) and is what the job captures.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

import anyio
import openai
import pydantic
from openai import AsyncOpenAI

from ai.errors import (
    InvalidInput,
    ProviderError,
    ProviderMalformed,
    ProviderRejected,
    ProviderTimeout,
    ProviderTransient,
)
from ai.ports import GeneratedImage, T, TextRequest, TextResult, Transcript
from ai.segments import Segment
from ai.usage import Usage
from billing.prices import Meter

__all__ = [
    "OpenAIConfig",
    "OpenAIImages",
    "OpenAIText",
    "OpenAITranscriber",
    "map_openai_error",
    "openai_client",
]

PROVIDER: Final = "openai"
SDK_RETRIES_MAX: Final = 1
# Statuses worth retrying besides 5xx: request timeout, lock conflict, rate limit.
_TRANSIENT_STATUSES: Final = frozenset({408, 409, 429})
ImageQuality = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    api_key: str
    base_url: str | None
    max_retries: int
    text_model: str
    text_timeout_s: float
    transcribe_model: str
    transcribe_timeout_s: float
    # Models that return segment timestamps (``verbose_json``); the others give text only.
    segment_models: frozenset[str]
    upload_bytes_max: int
    image_model: str
    image_quality: ImageQuality
    image_size: str
    image_timeout_s: float


def openai_client(config: OpenAIConfig) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=config.api_key,
        base_url=config.base_url,
        max_retries=min(max(config.max_retries, 0), SDK_RETRIES_MAX),
        timeout=config.text_timeout_s,
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def map_openai_error(exc: Exception) -> ProviderError:
    """The ``ai.errors`` error for an exception raised by the openai SDK."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(PROVIDER, "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderTransient(PROVIDER, "could not reach the API")
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderMalformed(PROVIDER, "the response did not match the API schema")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = getattr(exc, "code", None)
        if status == 429 and code == "insufficient_quota":
            # Our account is out of quota: retrying in seconds will not help.
            return ProviderRejected(PROVIDER, "the provider account is out of quota", status=429)
        if status >= 500 or status in _TRANSIENT_STATUSES:
            return ProviderTransient(
                PROVIDER, f"HTTP {status}", status=status, retry_after_s=_retry_after(exc)
            )
        return ProviderRejected(PROVIDER, f"HTTP {status}: {exc.message[:300]}", status=status)
    if isinstance(exc, openai.LengthFinishReasonError):
        return ProviderRejected(PROVIDER, "the answer did not fit the output limit")
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ProviderRejected(PROVIDER, "the answer was blocked by the content filter")
    if isinstance(exc, pydantic.ValidationError | json.JSONDecodeError | ValueError):
        return ProviderMalformed(PROVIDER, "the answer did not match the expected structure")
    return ProviderTransient(PROVIDER, f"unexpected {type(exc).__name__}")


_SDK_ERRORS: Final = (openai.OpenAIError, pydantic.ValidationError, ValueError)


def _tokens_estimate(text: str) -> int:
    # Used only when a response omits its usage: about four characters per token.
    return max(1, math.ceil(len(text) / 4))


class OpenAIText:
    """Structured generation with Chat Completions (``parse`` with a pydantic schema)."""

    def __init__(self, client: AsyncOpenAI, config: OpenAIConfig) -> None:
        self._client = client
        self._model = config.text_model
        self._timeout_s = config.text_timeout_s

    @property
    def product(self) -> str:
        return f"{PROVIDER}/{self._model}"

    async def generate(self, request: TextRequest[T]) -> TextResult[T]:
        try:
            completion = await self._client.chat.completions.parse(
                model=self._model,
                messages=[
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.user},
                ],
                response_format=request.schema,
                max_completion_tokens=request.max_output_tokens,
                timeout=self._timeout_s,
            )
        except _SDK_ERRORS as exc:
            raise map_openai_error(exc) from exc
        if not completion.choices:
            raise ProviderMalformed(PROVIDER, "the answer has no choices")
        message = completion.choices[0].message
        if message.refusal:
            raise ProviderRejected(PROVIDER, "the model declined the request", code="model_refused")
        if message.parsed is None:
            raise ProviderMalformed(PROVIDER, "the answer has no structured content")
        usage = completion.usage
        if usage is not None:
            tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
        else:
            tokens_in = _tokens_estimate(request.system + request.user)
            tokens_out = _tokens_estimate(message.content or "")
        spent = Usage()
        spent.add(self.product, Meter.INPUT_TOKENS, tokens_in)
        spent.add(self.product, Meter.OUTPUT_TOKENS, tokens_out)
        return TextResult(value=message.parsed, usage=spent)


class OpenAITranscriber:
    """Speech to text. Models in ``segment_models`` return segment timestamps; the others
    (``gpt-4o-transcribe`` and successors) return text only, and the caller sends one speech
    region per request instead."""

    def __init__(self, client: AsyncOpenAI, config: OpenAIConfig) -> None:
        self._client = client
        self._model = config.transcribe_model
        self._timeout_s = config.transcribe_timeout_s
        self._segments = config.transcribe_model in config.segment_models
        self.upload_bytes_max = config.upload_bytes_max

    @property
    def product(self) -> str:
        return f"{PROVIDER}/{self._model}"

    @property
    def returns_segments(self) -> bool:
        return self._segments

    async def transcribe(
        self, audio: Path, *, duration_ms: int, language: str | None
    ) -> Transcript:
        data = await anyio.Path(audio).read_bytes()
        if len(data) > self.upload_bytes_max:
            raise InvalidInput(f"audio chunk of {len(data)} bytes exceeds the upload limit")
        extra: dict[str, Any] = {"language": language} if language else {}
        try:
            if self._segments:
                verbose = await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(audio.name, data, "audio/mpeg"),
                    response_format="verbose_json",
                    timestamp_granularities=["segment"],
                    timeout=self._timeout_s,
                    **extra,
                )
                segments = tuple(
                    Segment(round(s.start * 1000), round(s.end * 1000), s.text.strip())
                    for s in verbose.segments or ()
                )
                seconds = verbose.usage.seconds if verbose.usage else verbose.duration
                text, detected = verbose.text, verbose.language
            else:
                plain = await self._client.audio.transcriptions.create(
                    model=self._model,
                    file=(audio.name, data, "audio/mpeg"),
                    response_format="json",
                    timeout=self._timeout_s,
                    **extra,
                )
                duration_usage = getattr(plain.usage, "seconds", None)
                # Token-billed models: the price table prices them per second of audio sent.
                seconds = duration_usage if duration_usage is not None else duration_ms / 1000
                segments, text, detected = (), plain.text, None
        except _SDK_ERRORS as exc:
            raise map_openai_error(exc) from exc
        usage = Usage.of(self.product, Meter.AUDIO_SECONDS, math.ceil(seconds))
        return Transcript(text=text, segments=segments, language=detected, usage=usage)


class OpenAIImages:
    def __init__(self, client: AsyncOpenAI, config: OpenAIConfig) -> None:
        self._client = client
        self._model = config.image_model
        self._quality = config.image_quality
        self._size = config.image_size
        self._timeout_s = config.image_timeout_s

    @property
    def product(self) -> str:
        return f"{PROVIDER}/{self._model}:{self._quality}"

    async def generate(self, prompt: str) -> GeneratedImage:
        try:
            response = await self._client.images.generate(
                model=self._model,
                prompt=prompt,
                n=1,
                size=cast(Any, self._size),
                quality=self._quality,
                output_format="png",
                timeout=self._timeout_s,
            )
        except _SDK_ERRORS as exc:
            raise map_openai_error(exc) from exc
        images = response.data or []
        if not images or not images[0].b64_json:
            raise ProviderMalformed(PROVIDER, "the answer has no image data")
        try:
            data = base64.b64decode(images[0].b64_json, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderMalformed(PROVIDER, "the image data is not base64") from exc
        return GeneratedImage(data=data, usage=Usage.of(self.product, Meter.IMAGES, len(images)))

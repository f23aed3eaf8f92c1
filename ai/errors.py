"""Errors of the AI package.

::

    AiError
    ├── ProviderError                   a provider call did not give a usable result
    │   ├── ProviderTransient           may succeed later: 429, 5xx, connection reset
    │   │   ├── ProviderTimeout         no answer within our explicit timeout
    │   │   └── ProviderMalformed       a body we could not parse or that failed validation
    │   ├── ProviderRejected            the provider refused this request (4xx): never retried
    │   └── ProviderNotConfigured       no API key for this provider on this server
    ├── InvalidInput (also ValueError)  the request can never succeed (bad media, language ...)
    ├── MediaNotFound                   a stored object is missing
    └── JobCancelled                    the user cancelled the job while it ran

The job runner retries ``ProviderTransient`` with backoff and fails everything else at once;
the HTTP layer maps ``ProviderNotConfigured`` to 503 and ``InvalidInput`` to 422.
"""

from __future__ import annotations

__all__ = [
    "AiError",
    "InvalidInput",
    "JobCancelled",
    "MediaNotFound",
    "ProviderError",
    "ProviderMalformed",
    "ProviderNotConfigured",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderTransient",
]


class AiError(Exception):
    """Base of every error of the ``ai`` package. ``code`` is stable, ``str()`` is for people."""

    code = "ai_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProviderError(AiError):
    code = "provider_error"

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(f"{provider}: {message}", code=code)
        self.provider = provider
        self.status = status


class ProviderTransient(ProviderError):
    code = "provider_unavailable"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(provider, message, status=status, code=code)
        # The provider's own hint (a 429's Retry-After), honoured by the retry policy.
        self.retry_after_s = retry_after_s


class ProviderTimeout(ProviderTransient):
    code = "provider_timeout"


class ProviderMalformed(ProviderTransient):
    code = "provider_malformed_response"


class ProviderRejected(ProviderError):
    code = "provider_rejected"


class ProviderNotConfigured(ProviderError):
    code = "provider_not_configured"

    def __init__(self, provider: str, setting: str) -> None:
        super().__init__(provider, f"provider not configured (set {setting})")
        self.setting = setting


class InvalidInput(AiError, ValueError):
    code = "invalid_input"


class MediaNotFound(AiError):
    code = "media_not_found"


class JobCancelled(AiError):
    code = "cancelled"

    def __init__(self, message: str = "the job was cancelled") -> None:
        super().__init__(message)

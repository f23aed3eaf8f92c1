"""Languages the AI operations accept (ISO 639-1), with the names given to models.

A model is told a language by a name from this table, never by user text; the set is the
intersection of what Whisper transcribes and what ElevenLabs' multilingual voices speak.
"""

from __future__ import annotations

from typing import Final

from ai.errors import InvalidInput

__all__ = ["LANGUAGES", "language_name"]

LANGUAGES: Final = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ms": "Malay",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sv": "Swedish",
    "ta": "Tamil",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def language_name(code: str) -> str:
    name = LANGUAGES.get(code)
    if name is None:
        raise InvalidInput(f"unsupported language {code[:10]!r}", code="unsupported_language")
    return name

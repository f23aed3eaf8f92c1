"""Media types from content, never from file names (pure).

Only the formats the product accepts are recognised; anything else is ``None`` and refused.
The decoder (ffmpeg) checks the rest: a file that sniffs right but does not decode is refused
too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MediaType", "sniff"]


@dataclass(frozen=True, slots=True)
class MediaType:
    mime: str
    extension: str
    kind: str  # audio | video | image


WAV: Final = MediaType("audio/wav", "wav", "audio")
MP3: Final = MediaType("audio/mpeg", "mp3", "audio")
OGG: Final = MediaType("audio/ogg", "ogg", "audio")
FLAC: Final = MediaType("audio/flac", "flac", "audio")
M4A: Final = MediaType("audio/mp4", "m4a", "audio")
MP4: Final = MediaType("video/mp4", "mp4", "video")
MOV: Final = MediaType("video/quicktime", "mov", "video")
WEBM: Final = MediaType("video/webm", "webm", "video")
PNG: Final = MediaType("image/png", "png", "image")
JPEG: Final = MediaType("image/jpeg", "jpg", "image")
WEBP: Final = MediaType("image/webp", "webp", "image")

_AUDIO_BRANDS: Final = (b"M4A ", b"M4B ", b"F4A ")
_MOV_BRANDS: Final = (b"qt  ",)


def _mp3_frame(head: bytes) -> bool:
    # MPEG audio frame sync: 11 set bits, a valid layer and a bitrate index that is not "bad".
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    layer = (head[1] >> 1) & 0x3
    bitrate = head[2] >> 4
    return layer != 0 and bitrate not in (0, 0xF)


def sniff(head: bytes) -> MediaType | None:
    """The media type of a file whose first bytes (at least 16 are needed) are ``head``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:3] == b"ID3" or _mp3_frame(head):
        return MP3
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"fLaC":
        return FLAC
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return M4A
        return MOV if brand in _MOV_BRANDS else MP4
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    return None

"""Option help and argument types shared by the ``flowai`` commands (pure)."""

from __future__ import annotations

import argparse
from typing import Final

from server.settings import Settings

__all__ = ["TOKEN_TTL_S_MAX", "setting_default", "token_ttl", "with_default", "with_setting"]

# A local token should not outlive a working month; CI or a script can mint a new one.
TOKEN_TTL_S_MAX: Final = 30 * 24 * 3600


def setting_default(name: str) -> object:
    """The built-in default of a setting (what applies when its ``FLOWAI_*`` is unset)."""
    return Settings.model_fields[name].default


def with_default(text: str, default: object) -> str:
    """Help that ends with the option's default (argparse formats help with ``%``)."""
    return f"{text} (default: {default})".replace("%", "%%")


def with_setting(text: str, setting: str) -> str:
    """Help of an option that overrides a setting: names its ``FLOWAI_*`` and its default."""
    env = f"FLOWAI_{setting.upper()}"
    return with_default(text, f"{env} if set, else {setting_default(setting)}")


def token_ttl(text: str) -> int:
    """``--ttl``: whole seconds, at least 1 and at most ``TOKEN_TTL_S_MAX``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 1 <= value <= TOKEN_TTL_S_MAX:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {TOKEN_TTL_S_MAX} seconds (30 days), got {value}"
        )
    return value

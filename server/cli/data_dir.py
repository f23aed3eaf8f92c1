"""The data directory a command works in, and the checks that keep every command but
``serve`` and ``migrate`` from creating a new one.

Every command resolves it the same way (``Settings.data_dir``: ``FLOWAI_DATA_DIR``, else
``$XDG_DATA_HOME/flowai`` or ``~/.local/share/flowai``). A command that only reads (``token``,
``credits``, ``users``, ``worker``) and finds nothing there stops with an error that names the
directory, instead of quietly creating a second database or secret that the server never sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.settings import Settings

__all__ = [
    "LEGACY_NAME",
    "DataDir",
    "DataDirError",
    "Needs",
    "NeedsFor",
    "check_can_create",
    "has_embedded_database",
    "locate",
    "needs_only",
    "require",
]

# Earlier versions kept data in ``./.flowai`` of the current directory.
LEGACY_NAME = ".flowai"


class DataDirError(Exception):
    """The data directory cannot serve this command; the message says what to do."""


@dataclass(frozen=True, slots=True)
class DataDir:
    path: Path
    # ``FLOWAI_DATA_DIR`` (or ``data_dir``) was given, rather than the default taken.
    configured: bool
    # ``./.flowai`` in the current directory, when the default is used and one exists.
    legacy: Path | None

    def describe(self) -> str:
        how = "from FLOWAI_DATA_DIR" if self.configured else "the default; FLOWAI_DATA_DIR is unset"
        return f"{self.path} ({how})"


@dataclass(frozen=True, slots=True)
class Needs:
    """What a command reads from the data directory when it is not configured otherwise."""

    database: bool = False
    jwt_secret: bool = False


# A command's needs may depend on its settings (a worker with S3 media signs no local links).
NeedsFor = Callable[[Settings], Needs]


def needs_only(needs: Needs) -> NeedsFor:
    """The needs of a command whatever its settings."""
    return lambda _settings: needs


def locate(settings: Settings, cwd: Path) -> DataDir:
    configured = "data_dir" in settings.model_fields_set
    legacy = None
    candidate = cwd / LEGACY_NAME
    if not configured and candidate.is_dir() and candidate.absolute() != settings.data_dir:
        legacy = candidate.absolute()
    return DataDir(settings.data_dir, configured, legacy)


def has_embedded_database(path: Path) -> bool:
    return (path / "pg" / "PG_VERSION").is_file()


def check_can_create(data: DataDir) -> None:
    """``serve`` and ``migrate`` may create the data directory, but not silently beside the
    one an earlier version left in the current directory (its projects would seem lost)."""
    if data.legacy is None or data.path.exists():
        return
    raise DataDirError(
        f"{data.legacy} holds data of an earlier version, which kept it in the current "
        f"directory; data now lives in {data.path}. To keep using it, set "
        f"FLOWAI_DATA_DIR={data.legacy} (or move it: mv {data.legacy} {data.path}); to start "
        f"afresh in {data.path}, create that directory first."
    )


def require(data: DataDir, settings: Settings, needs: Needs) -> None:
    """Raise ``DataDirError`` when something the command needs is neither configured nor in
    the data directory."""
    missing: list[tuple[str, str]] = []
    if needs.database and not settings.database_url and not has_embedded_database(data.path):
        missing.append(("no embedded database (pg/)", "FLOWAI_DATABASE_URL"))
    if needs.jwt_secret and not settings.jwt_secret:
        if not (data.path / "jwt_secret").is_file():
            missing.append(("no JWT secret (jwt_secret)", "FLOWAI_JWT_SECRET"))
    if not missing:
        return
    what = " and ".join(m for m, _ in missing)
    settings_named = " / ".join(s for _, s in missing)
    hint = (
        f" {data.legacy} (the old default) exists: FLOWAI_DATA_DIR={data.legacy} uses it."
        if data.legacy
        else ""
    )
    raise DataDirError(
        f"{what} in the data directory {data.describe()}. Run `flowai serve` (or `flowai "
        f"migrate`) once to create it, set FLOWAI_DATA_DIR to the directory the server uses, "
        f"or set {settings_named}.{hint}"
    )

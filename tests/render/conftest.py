"""Fixtures of the render tests: a server whose jobs run in process, media made with lavfi."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.settings import Settings
from tests.conftest import make_settings
from tests.support.server import RunningServer, run_server


def render_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": database_url,
        "jobs_in_process": True,
        "job_heartbeat_s": 0.2,
        "job_stalled_after_s": 2.0,
        "job_poll_s": 0.2,
        "job_recovery_interval_s": 0.5,
        "job_retry_base_s": 0.05,
        "job_retry_max_s": 0.2,
        "job_shutdown_grace_s": 0.5,
        "render_file_roots": [tmp_path / "sources"],
    }
    base.update(overrides)
    return make_settings(tmp_path, **base)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    return folder


@pytest.fixture
async def render_server(
    tmp_path: Path, database_url: str, sources: Path
) -> AsyncIterator[RunningServer]:
    async with run_server(render_settings(tmp_path, database_url)) as running:
        yield running

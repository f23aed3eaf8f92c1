"""Fixtures of the AI tests: fake providers, the test clip, a server wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ai.helpers import ai_settings
from tests.support.ai_media import make_test_clip, make_voice_sample
from tests.support.fake_providers import FakeProviders, run_fake_providers
from tests.support.server import RunningServer, run_server


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with run_fake_providers() as providers:
        yield providers


@pytest.fixture(scope="session")
def test_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_clip(tmp_path_factory.mktemp("media") / "clip.mp4")


@pytest.fixture(scope="session")
def voice_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_voice_sample(tmp_path_factory.mktemp("voice") / "sample.mp3")


@pytest.fixture
async def ai(
    tmp_path: Path, database_url: str, fake: FakeProviders
) -> AsyncIterator[RunningServer]:
    async with run_server(ai_settings(tmp_path, database_url, fake)) as running:
        yield running

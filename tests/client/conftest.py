from __future__ import annotations

import pytest

from tests.client.node import build_client


@pytest.fixture(scope="session")
def client_build() -> None:
    """The client package and its tests, compiled once per test session."""
    build_client()

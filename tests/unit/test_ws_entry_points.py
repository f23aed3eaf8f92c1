"""The names uvicorn and the package are given still lead to the websocket code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

from uvicorn.importer import import_from_string

from server.app import HTTP_PROTOCOL, WEBSOCKET_PROTOCOL
from server.ws import JoinRouter, WebSocketConnection

ROOT = Path(__file__).resolve().parents[2]


def test_uvicorns_protocol_strings_resolve_to_the_websocket_classes() -> None:
    assert WEBSOCKET_PROTOCOL == "server.ws:WebSocketConnection"
    assert HTTP_PROTOCOL == "server.ws:JoinRouter"
    assert import_from_string(WEBSOCKET_PROTOCOL) is WebSocketConnection
    assert import_from_string(HTTP_PROTOCOL) is JoinRouter
    assert JoinRouter.websocket_protocol is WebSocketConnection


def test_the_flowai_console_script_resolves_to_a_callable() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attribute = scripts["flowai"].partition(":")
    main = getattr(import_module(module), attribute)
    assert callable(main)


def test_the_command_line_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout

"""Structured logs: one JSON object per line (or plain text for local reading)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from server.log_context import ContextFilter


def configure_logging(level: str, *, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log repeats the query string, where websocket tokens travel.
    logging.getLogger("uvicorn.access").disabled = True

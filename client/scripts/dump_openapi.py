"""Write the server's OpenAPI schema to client/openapi.json (the input of ``npm run gen:api``).

``create_app(...).openapi()`` builds the schema from the routes alone: no database, no
network. ``tests/client/test_openapi_schema.py`` fails when the committed file drifts.

    PYTHONPATH=. python client/scripts/dump_openapi.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from server.app import create_app
from server.settings import Settings

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.json"


def current_schema() -> dict[str, Any]:
    """The schema of the app as built now (settings do not change the routes)."""
    schema: dict[str, Any] = create_app(Settings(jwt_secret="x" * 32)).openapi()
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OPENAPI_PATH.write_text(render(current_schema()), encoding="utf-8")
    print(f"wrote {OPENAPI_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

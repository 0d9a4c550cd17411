"""JSON responses in the original's shape: pretty-printed bodies, ``{"ok": false, "error": ...}`` errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class PrettyJSONResponse(JSONResponse):
    """Two-space indented JSON, byte-for-byte what the original's ``JSON.pretty_generate`` writes."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_INDENT_2)


def ok(status_code: int = 200, /, **body: Any) -> PrettyJSONResponse:
    return PrettyJSONResponse({"ok": True, **body}, status_code=status_code)


def error(status: int, message: str, /, headers: dict[str, str] | None = None, **extra: Any) -> PrettyJSONResponse:
    return PrettyJSONResponse({"ok": False, "error": message, **extra}, status_code=status, headers=headers)

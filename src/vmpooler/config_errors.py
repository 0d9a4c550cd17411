"""Turns pydantic's validation errors into one line per problem that names the key path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_MESSAGES: Final = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_too_short": "must not be empty",
}
_BOUNDS: Final = {  # pydantic error type -> (symbol, its ctx key)
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def translate(exc: ValidationError, prefix: tuple[str | int, ...], origins: Mapping[str, str]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _path((*prefix, *error["loc"]))
        problem = f"{path}: {_message(error)}"
        if path in origins:
            problem += f" (from environment variable {origins[path]})"
        problems.append(problem)
    return problems


def _message(error: ErrorDetails) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error.get("input"))
    if kind == "missing":
        return "required"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"must be {symbol} {_show(ctx[key])}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}, got {got}"
    if kind == "string_too_short":
        return _MESSAGES[kind]
    return f"{_MESSAGES.get(kind, error['msg'])}, got {got}"


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a bound of gt=0 on a float field reads "> 0", not "> 0.0"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""Redis replies as plain str collections, and field mappings as Redis arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: a record's fields as callers pass them; Redis stores every value as a string
Fields = Mapping[str, str | int | float]


def flat_pairs(fields: Fields | None) -> list[str]:
    """``{"a": 1}`` -> ``["a", "1"]``: field, value pairs as a Lua script's ARGV takes them."""
    return [str(item) for pair in (fields or {}).items() for item in pair]


def str_mapping(fields: Fields) -> Any:
    # redis-py types mapping keys invariantly over bytes | str | ...; ours are all str
    return {key: str(value) for key, value in fields.items()}


def str_set(values: Any) -> set[str]:
    """A reply of a client made with decode_responses=True holds str only."""
    return {str(v) for v in values}


def str_dict(reply: Any) -> dict[str, str]:
    """A hash reply (HGETALL) as str -> str."""
    return {str(k): str(v) for k, v in reply.items()}

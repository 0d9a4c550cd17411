"""JSON shapes: keys and value types, compared from the original's side (our additions are allowed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def missing_from(theirs: Any, ours: Any, names: Mapping[str, str], path: str = "") -> list[str]:
    """Where ``ours`` lacks a key ``theirs`` has, or has another type there. ``names`` maps values that
    differ by nature between the two runs (a VM name, a token) to one placeholder, so the keys they
    form compare equal. A null on their side matches anything (the original leaves unset values null)."""
    if theirs is None:
        return []
    if kind(theirs) != kind(ours):
        return [f"{path or '/'}: {kind(theirs)} there, {kind(ours)} here"]
    if isinstance(theirs, dict):
        ours_by_name = {names.get(k, k): v for k, v in ours.items()}
        problems = []
        for raw_key, value in theirs.items():
            key = names.get(raw_key, raw_key)
            if key not in ours_by_name:
                problems.append(f"{path}/{key}: missing")
            else:
                problems += missing_from(value, ours_by_name[key], names, f"{path}/{key}")
        return problems
    if isinstance(theirs, list):
        # item by item (the pools of a configuration each have their own keys); lengths may differ
        pairs = enumerate(zip(theirs, ours, strict=False))
        return [p for i, (a, b) in pairs for p in missing_from(a, b, names, f"{path}[{i}]")]
    return []


def body_of(text: str) -> Any:
    """The reply's JSON, or the text itself when it is not JSON (the original answers some errors in text)."""
    try:
        return json.loads(text)
    except ValueError:
        return text

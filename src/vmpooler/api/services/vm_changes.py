"""Checks of a VM change (PUT /vm/<name>): its lifetime and tags, every problem collected at once."""

from __future__ import annotations

import re
from typing import Any

from vmpooler.config import Settings
from vmpooler.limits import lifetime_limit

TAG_KEY = re.compile(r"[A-Za-z0-9_.-]+")  # length: :config: max_tag_name_length
# a space, not \s: a tag value holds no newline, tab or other control character
TAG_VALUE = re.compile(r"[\w \-.@:/]*")  # length: :config: max_tag_value_length


def check_lifetime(settings: Settings, value: Any, failures: list[str]) -> int | None:
    """The new lifetime in hours, or None with the reason appended to ``failures``."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        lifetime = int(value)
    except ValueError:
        failures.append(f"Lifetime must be a positive integer number of hours (got {str(value)[:40]!r})")
        return None
    limit = lifetime_limit(settings)
    if lifetime <= 0:
        failures.append(f"Lifetime must be a positive integer number of hours (got {lifetime})")
    elif lifetime > limit:
        failures.append(f"You provided a lifetime ({str(value)[:40]}) that exceeds the configured maximum of {limit}.")
    else:
        return lifetime
    return None


def check_tags(settings: Settings, value: Any, failures: list[str]) -> dict[str, str]:
    """The tags to store (filtered by ``:tagfilter:``); each problem is appended to ``failures``."""
    if not isinstance(value, dict):
        failures.append('tags must be a JSON object such as {"team": "qa"}')
        return {}
    cfg = settings.config
    allowed = cfg.allowed_tags
    if allowed is not None and (unknown := sorted(set(value) - set(allowed))):
        failures.append(f"You provided unsupported tags ({', '.join(unknown)}); allowed: {', '.join(allowed)}")
        return {}
    if len(value) > cfg.max_tags_per_vm:
        failures.append(f"Too many tags: a VM may carry at most {cfg.max_tags_per_vm} (got {len(value)})")
        return {}
    tags: dict[str, str] = {}
    for key, raw in value.items():
        text = "" if raw is None else str(raw)
        if len(key) > cfg.max_tag_name_length or not TAG_KEY.fullmatch(key):
            failures.append(
                f"Tag name {key[:60]!r} must be 1-{cfg.max_tag_name_length} letters, digits, '_', '.' or '-'"
            )
        elif len(text) > cfg.max_tag_value_length:
            failures.append(f"Tag value for {key!r} exceeds {cfg.max_tag_value_length} characters")
        elif not TAG_VALUE.fullmatch(text):
            failures.append(f"Tag value for {key!r} contains invalid characters")
        elif text:
            tags[key] = filter_tag(settings, key, text)
    return tags


def filter_tag(settings: Settings, key: str, value: str) -> str:
    """Apply the configured ``:tagfilter:`` regex: the value becomes its joined captures."""
    pattern = settings.tagfilter.get(key)
    if not pattern:
        return value
    try:
        match = re.search(pattern, value)
    except re.error:
        return value
    if match is None or not match.groups():
        return value
    return "".join(group for group in match.groups() if group)

"""Sorts the ``vmpooler__*`` keys of a Redis by whether this implementation reads them (for migration checks).

A key is *ours* when it matches a key name of :mod:`vmpooler.store.keys` (the patterns are derived from that
module, so a key added there is known here without another change), *original-only* when only the Ruby
vmpooler writes it and we safely ignore it, and *unknown* otherwise.
"""

from __future__ import annotations

import inspect
import itertools
import re
import typing
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any, Final

from vmpooler.states import VMState
from vmpooler.store import keys, tasks
from vmpooler.store.connection import Redis, translated

__all__ = ["ORIGINAL_ONLY", "KeyAudit", "KeyKind", "classify"]


class KeyKind(StrEnum):
    OURS = "ours"
    ORIGINAL_ONLY = "original-only"
    UNKNOWN = "unknown"


# Keys only the original writes. We never read or write them, so they are named here and not in keys.py.
ORIGINAL_ONLY: Final = {
    r"tasks__clone": "the original's count of clones in flight (we lease clone slots instead)",
    r"tasks__ondemandclone": "the original's count of on-demand clones in flight",
    r"migrating__.+": "checked-out VMs awaiting a vSphere migration decision (they are also in running)",
    r"migration": "vSphere migrations in flight",
    r"template__deltas": "templates given delta disks (vSphere)",
    r"pool__undo_(size|template)_override": "undo requests not yet applied (our DELETE applies at once)",
    r"odcreate__task": "the original's queued on-demand clones: open requests are not resumed here",
    r"dlq__.+": "dead-letter queues (3.8+)",
    r"health": "the health-check thread's report (3.8+)",
}

_SEGMENT = r"(?:(?!__).)+"  # one name between separators: pools, VM names and ids have no '__'
_ANY_TEXT = "\x00"  # stands for a name while a key function is called to learn its pattern
_ANY_DAY = date(1999, 12, 31)
_TOKEN_ID = re.compile(r"[0-9a-f]{64}")  # our token records are keyed by the token's SHA-256


def _arguments(function: Callable[..., str]) -> list[list[Any]]:
    """For each parameter, the values to call with: every state for a VMState, a stand-in otherwise."""
    hints = typing.get_type_hints(function)
    choices: list[list[Any]] = []
    for name in inspect.signature(function).parameters:
        kind = hints.get(name)
        if kind is VMState:
            choices.append(list(VMState))
        elif kind is date:
            choices.append([_ANY_DAY])
        else:
            choices.append([_ANY_TEXT])  # str, int: only formatted into the name
    return choices


def _regex(key: str) -> str:
    key = key.replace(_ANY_DAY.isoformat(), "\x01")
    wild = {_ANY_TEXT: _SEGMENT, "\x01": r"\d{4}-\d{2}-\d{2}"}
    return "".join(wild.get(char) or re.escape(char) for char in key)


@cache
def _our_patterns() -> re.Pattern[str]:
    alternatives: set[str] = set()
    for name, value in vars(keys).items():
        if name.startswith("_"):
            continue
        if isinstance(value, str) and value.startswith(keys.PREFIX) and value != keys.PREFIX:
            alternatives.add(re.escape(value))
        elif inspect.isfunction(value) and value.__module__ == keys.__name__:
            for args in itertools.product(*_arguments(value)):
                alternatives.add(_regex(value(*args)))
    # the task queues' in-progress companions are named in tasks.py, not keys.py
    alternatives |= {re.escape(tasks._in_progress(kind)) for kind in tasks.QUEUES}
    return re.compile("|".join(sorted(alternatives)))


@cache
def _original_patterns() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(re.escape(keys.PREFIX) + pattern), note) for pattern, note in ORIGINAL_ONLY.items()]


def classify(key: str) -> tuple[KeyKind, str]:
    """Whose key this is, with a note for the original's keys (empty otherwise)."""
    for pattern, note in _original_patterns():
        if pattern.fullmatch(key):
            return KeyKind.ORIGINAL_ONLY, note
    if _our_patterns().fullmatch(key):
        return KeyKind.OURS, ""
    return KeyKind.UNKNOWN, ""


class KeyAudit:
    """Read-only scans for ``vmpooler migrate-from-ruby``; nothing here is on a request path."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def all_keys(self) -> list[str]:
        """Every ``vmpooler__*`` key, sorted (SCAN: Redis keeps serving while it runs)."""
        async with translated():
            return sorted({str(key) async for key in self.client.scan_iter(match=f"{keys.PREFIX}*", count=1000)})

    async def registered_pools(self) -> set[str]:
        """The pools the last manager (ours or the original) published."""
        async with translated():
            return {str(name) for name in await self.client.smembers(keys.POOLS)}

    async def clear_tokens(self) -> dict[str, dict[str, str]]:
        """Token records the original stored under the token itself (we adopt each on its first use)."""
        prefix = keys.token("")
        async with translated():
            found = [str(key) async for key in self.client.scan_iter(match=f"{prefix}*", count=1000)]
            clear = sorted(key for key in found if not _TOKEN_ID.fullmatch(key.removeprefix(prefix)))
            async with self.client.pipeline(transaction=False) as pipe:
                for key in clear:
                    pipe.hgetall(key)
                records = await pipe.execute()
        return {
            key.removeprefix(prefix): {str(k): str(v) for k, v in record.items()}
            for key, record in zip(clear, records, strict=True)
        }

"""The API's error hints said in the command line's terms: `vmpooler list`, not ``GET /vm``.

The server's messages speak HTTP, as its clients send HTTP; a person at the ``vmpooler`` command wants the
verb or option to type. Messages from other servers (the original) pass through unchanged.
"""

from __future__ import annotations

import re

_IN_CLI_TERMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"GET /vm lists the pools", "`vmpooler list` lists the pools"),
        (r"GET /vm/(\S+) lists its snapshots", r"`vmpooler query \1` lists its snapshots"),
        (
            r"send it in the X-AUTH-TOKEN header \(POST /token makes one\)",
            "give it with --token or $VMPOOLER_TOKEN (`vmpooler token get` makes one)",
        ),
        (r"send it in the X-AUTH-TOKEN header", "give it with --token or $VMPOOLER_TOKEN"),
        (r"POST /token creates one", "`vmpooler token get` creates one"),
        (r"with POST /api/v3/token", "with `vmpooler token get`"),
    )
)


def in_cli_terms(message: str) -> str:
    for pattern, replacement in _IN_CLI_TERMS:
        message = pattern.sub(replacement, message)
    return message


def plural(count: int, noun: str) -> str:
    """``1 pool``, ``2 pools``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


__all__ = ["in_cli_terms", "plural"]

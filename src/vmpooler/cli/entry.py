"""The ``vmpooler`` console script: the original's command-line forms, and a light start for client verbs.

The original (Ruby) vmpooler runs as ``vmpooler`` (API and manager, configured through
``VMPOOLER_CONFIG``/``VMPOOLER_CONFIG_FILE``), ``vmpooler api``, ``vmpooler manager`` or
``vmpooler api manager``; container entrypoints and systemd units written for it keep working here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

ROLES = frozenset({"api", "manager"})
CONFIG_VARIABLES = ("VMPOOLER_CONFIG", "VMPOOLER_CONFIG_FILE")


def original_forms(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` with the original's forms spelled as ours: a bare ``vmpooler`` given a config through the
    environment, and ``api manager`` (either order), both run API and manager, i.e. ``serve``."""
    if not argv:
        return ["serve"] if any(env.get(name) for name in CONFIG_VARIABLES) else []
    if len(argv) >= 2 and argv[0] in ROLES and {argv[0], argv[1]} == ROLES:
        return ["serve", *argv[2:]]
    return list(argv)


def main() -> None:
    # httpx imports its own command line (click, rich, pygments: ~0.15 s) when imported; we never use it,
    # and every client verb would pay for it (issue 17: `vmpooler get` starts in ≤ 0.3 s)
    # (a None entry makes `import httpx._main` fail, and httpx then goes without it, as it is written to)
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from vmpooler.cli.main import app

    app(args=original_forms(sys.argv[1:], os.environ), prog_name="vmpooler")


__all__ = ["main", "original_forms"]

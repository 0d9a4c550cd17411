"""What the chaos tests run: the vmpooler configuration they share, and the knobs read from the environment.

* ``CHAOS_SEED`` (default 5) seeds the random choices (kill moments, the dummy provider's faults, the
  fuzzer);
* ``CHAOS_ROUNDS`` (default 12): how many times the kill -9 test kills the manager;
* ``CHAOS_EVENT_ROUNDS`` (default 3): how many times the event stream's test kills the manager and an API;
* ``CHAOS_SECONDS`` (default 20): how long the concurrent checkout test runs;
* ``CHAOS_FREEZE_SECONDS`` (default 30) and ``CHAOS_DOWN_SECONDS`` (default 5): how long Redis is frozen,
  and how long it stays dead before its restart, in the outage tests;
* ``CHAOS_FUZZ_EXAMPLES`` (default 6): schemathesis examples per operation (6 gives ~2,000 requests).

Larger values make a longer, harsher run (``CHAOS_ROUNDS=100 CHAOS_SECONDS=120``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: seconds no Redis call may wait (the ``:redis: socket_timeout`` the processes run with)
REDIS_TIMEOUT = 2.0


def knob(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def seed() -> int:
    return int(knob("CHAOS_SEED", 5))


def short(hostname: str) -> str:
    """A VM's name from the FQDN a v3 checkout reply gives."""
    return hostname.split(".", 1)[0]


def config(
    redis_port: int,
    inventory: Path,
    sizes: dict[str, int],
    *,
    dummy: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A configuration of ``sizes`` (pool -> size) on the dummy provider with a shared ``inventory`` file.

    Every provider call is slowed (clone up to 0.6 s, boot 0.4 s, destroy up to 0.4 s) so a kill lands
    mid-clone, mid-boot or mid-destroy; passes follow each other quickly so a test sees many of them.
    """
    provider = {
        "filename": str(inventory),
        "createvm_max_time": 0.6,
        "ready_delay": 0.4,
        "destroyvm_max_time": 0.4,
        **(dummy or {}),
    }
    return {
        ":redis:": {"server": "127.0.0.1", "port": redis_port, "socket_timeout": REDIS_TIMEOUT},
        ":providers:": {":dummy:": provider},
        ":config:": {
            "check_loop_delay_min": 0.2,
            "check_loop_delay_max": 1,
            "task_limit": 4,
            "timeout": 1,
            "vm_checktime": 1,
            **settings,
        },
        ":pools:": [{"name": name, "template": f"templates/{name}", "size": size} for name, size in sizes.items()],
    }

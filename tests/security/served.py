"""What the HTTP security tests share: ready VMs in the real Redis, and `vmpooler api` as users run it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import VmpoolerProcess, write_config
from tests.support.servers import make_store


def fill(redis_port: int, pool: str, count: int) -> list[str]:
    """``count`` ready VMs in ``pool`` (names ``<pool>-vm<i>``), straight into Redis."""
    names = [f"{pool}-vm{i}" for i in range(count)]

    async def run() -> None:
        store = make_store(redis_port)
        try:
            for name in names:
                await store.create_pending(pool, name, {})
                await store.mark_ready(pool, name, time.time(), 1.0)
        finally:
            await store.close()

    asyncio.run(run())
    return names


@contextlib.contextmanager
def api_process(workdir: Path, redis_port: int, **sections: Any) -> Iterator[VmpoolerProcess]:
    """`vmpooler api` on a free port over the test Redis with one dummy pool ``deb``; ``sections``
    are added to the configuration (``config={...}`` merges into ``:config:``)."""
    raw: dict[str, Any] = {
        ":redis:": {"server": "127.0.0.1", "port": redis_port},
        ":pools:": [{"name": "deb", "template": "t/deb", "size": 1}],
        **{f":{name}:": value for name, value in sections.items() if name != "config"},
        ":config:": sections.get("config", {}),
    }
    config = write_config(workdir / "vmpooler.yaml", raw)
    process = VmpoolerProcess("api", config, workdir / "logs").start()
    try:
        yield process
    finally:
        process.stop()


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")

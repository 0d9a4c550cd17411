"""The round trip both real-hypervisor providers must make: fill, lend over the API, reach, return, destroy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import redis

from tests.support.guest import BANNER_PREFIX
from tests.support.pools import run_until, settle
from tests.support.servers import ApiThread
from vmpooler.config import Settings
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store


@asynccontextmanager
async def lent_guest(
    manager: Manager,
    store: Store,
    settings: Settings,
    redis_port: int,
    pool: str,
    boot_timeout: float,
    read_banner: Callable[[str], Awaitable[str]],
) -> AsyncIterator[str]:
    """Fill ``pool`` (size 1) through the real manager, check its VM out over the real API and read the
    guest's banner at the address the API reports: it must name that very VM. Yields the hostname;
    afterwards the VM is returned over the API and the manager has destroyed it."""
    await manager.register_pools()

    async def filled() -> bool:
        return bool(await store.members(pool, VMState.READY))

    await run_until(manager, filled, timeout=boot_timeout + 30, pause=0.5)
    with ApiThread(settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        redis.Redis(port=redis_port).hset(keys.CONFIG_POOLSIZE, pool, "0")  # no refill while we watch
        hostname = client.post(f"/api/v3/vm/{pool}").json()[pool]["hostname"]
        address = client.get(f"/api/v3/vm/{hostname}").json()[hostname]["ip"]
        assert address.startswith("127.0.0.1:")
        line = await read_banner(address)
        assert line.startswith(f"{BANNER_PREFIX} {hostname} disk=ok"), line  # that very guest, on its template
        yield hostname
        assert client.delete(f"/api/v3/vm/{hostname}").json() == {"ok": True}

    async def destroyed() -> bool:
        return await store.locate(hostname) == (pool, VMState.DESTROYED)

    await run_until(manager, destroyed, timeout=60, pause=0.5)
    await settle(manager)

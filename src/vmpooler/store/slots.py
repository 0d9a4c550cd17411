"""Clone slots: the global ``task_limit`` as expiring leases in Redis, shared by every manager."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.commands.core import AsyncScript

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated


class SlotStore:
    """Each slot is a zset member ``<pool>:<vm>@<manager>`` scored by its lease's expiry, so a crashed
    manager's slots expire on their own and, sooner, are freed once its heartbeat lapses."""

    def __init__(
        self, client: Redis, take_script: AsyncScript, managers_alive: Callable[[set[str]], Awaitable[set[str]]]
    ) -> None:
        self.client = client
        self._take = take_script
        self._managers_alive = managers_alive

    @staticmethod
    def member(pool: str, name: str, owner: str) -> str:
        return f"{pool}:{name}@{owner}"

    async def acquire(self, member: str, now: float, lease_seconds: float, limit: int) -> bool:
        async with translated():
            taken = await self._take(keys=[keys.CLONE_SLOTS], args=[member, now, now + lease_seconds, limit])
        return bool(taken)

    async def release(self, member: str) -> None:
        async with translated():
            await self.client.zrem(keys.CLONE_SLOTS, member)

    async def reap(self) -> int:
        """Free the slots of managers whose heartbeat lapsed. A manager killed after taking a slot
        (before or during its clone) would otherwise hold it until the lease ran out: the pool's
        clone timeout plus the call timeout, many minutes of a smaller task_limit."""
        async with translated():
            members = [str(m) for m in await self.client.zrange(keys.CLONE_SLOTS, 0, -1)]
        owners = {m.rpartition("@")[2] for m in members if "@" in m}
        alive = await self._managers_alive(owners)
        dead = [m for m in members if "@" in m and m.rpartition("@")[2] not in alive]
        if dead:
            async with translated():
                await self.client.zrem(keys.CLONE_SLOTS, *dead)
        return len(dead)

    async def in_flight(self, now: float) -> int:
        async with translated():
            return int(await self.client.zcount(keys.CLONE_SLOTS, now, "+inf"))

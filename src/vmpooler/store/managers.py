"""Which managers are alive: their heartbeats, descriptions and retirement."""

from __future__ import annotations

import time

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated


class ManagerStore:
    """Each manager's heartbeat key (``host:pid``, with a TTL) and the sorted set of when each last beat."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def heartbeat(self, manager_id: str, description: str, ttl_seconds: int, now: float = 0.0) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.set(keys.manager(manager_id), description, ex=ttl_seconds)
            pipe.zadd(keys.MANAGERS, {manager_id: now or time.time()})
            await pipe.execute()

    async def retire(self, manager_id: str) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.manager(manager_id))
            pipe.zrem(keys.MANAGERS, manager_id)
            await pipe.execute()

    async def live_count(self, since: float) -> int:
        """How many managers sent a heartbeat after ``since`` (epoch seconds)."""
        async with translated():
            await self.client.zremrangebyscore(keys.MANAGERS, "-inf", since - 3600)
            return int(await self.client.zcount(keys.MANAGERS, since, "+inf"))

    async def descriptions(self) -> dict[str, str]:
        """manager id -> ``host:pid`` for every manager whose heartbeat has not lapsed."""
        async with translated():
            ids = [str(i) for i in await self.client.zrange(keys.MANAGERS, 0, -1)]
            if not ids:
                return {}
            found = await self.client.mget([keys.manager(i) for i in ids])
        return {i: str(d) for i, d in zip(ids, found, strict=True) if d is not None}

    async def alive(self, manager_ids: set[str]) -> set[str]:
        """Those of ``manager_ids`` whose heartbeat has not lapsed."""
        ids = sorted(manager_ids)
        if not ids:
            return set()
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for manager_id in ids:
                pipe.exists(keys.manager(manager_id))
            found = await pipe.execute()
        return {manager_id for manager_id, alive in zip(ids, found, strict=True) if alive}

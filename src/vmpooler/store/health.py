"""Why a pool cannot be filled right now, as the manager reports it for /status and the dashboard."""

from __future__ import annotations

import json
from typing import Any

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated


class HealthStore:
    def __init__(self, client: Redis) -> None:
        self.client = client

    async def degrade(self, pool: str, problem: str, since: float, retry_at: float | None) -> None:
        record = {"problem": problem, "since": round(since, 3), "retry_at": retry_at and round(retry_at, 3)}
        async with translated():
            await self.client.hset(keys.POOL_HEALTH, pool, json.dumps(record))

    async def recover(self, pool: str) -> None:
        async with translated():
            await self.client.hdel(keys.POOL_HEALTH, pool)

    async def degraded(self) -> dict[str, dict[str, Any]]:
        """pool -> ``{problem, since, retry_at}`` for every pool that is degraded now."""
        async with translated():
            raw = await self.client.hgetall(keys.POOL_HEALTH)
        out: dict[str, dict[str, Any]] = {}
        for pool, value in raw.items():
            try:
                out[str(pool)] = dict(json.loads(value))
            except (ValueError, TypeError):
                out[str(pool)] = {"problem": str(value)}
        return out

"""Why a pool cannot be filled right now, as the manager reports it for /status and the dashboard."""

from __future__ import annotations

import json
from typing import Any

from vmpooler.store import keys, scripts
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import EventLog, at_field


class HealthStore:
    """A pool turning degraded writes ``pool.breaker_opened``, turning healthy ``pool.breaker_closed``."""

    def __init__(self, client: Redis, eventlog: EventLog) -> None:
        self.client = client
        self.eventlog = eventlog
        self._publish = scripts.load(client, "health")

    async def degrade(self, pool: str, problem: str, since: float, retry_at: float | None) -> None:
        record = {"problem": problem, "since": round(since, 3), "retry_at": retry_at and round(retry_at, 3)}
        await self._write(pool, json.dumps(record), since)

    async def recover(self, pool: str) -> None:
        await self._write(pool, "", None)

    async def _write(self, pool: str, record: str, at: float | None) -> None:
        async with translated():
            await self._publish(
                keys=[keys.POOL_HEALTH, keys.EVENT_STREAM], args=[pool, record, at_field(at), self.eventlog.max_length]
            )

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

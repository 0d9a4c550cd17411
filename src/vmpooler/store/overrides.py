"""Run-time pool overrides set through the API (size, template, clone target, reset), kept in Redis
so they survive restarts and reach every manager."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio.client import Pipeline

from vmpooler.store import keys, scripts
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import EventLog, at_field, event_data, queue_event

#: override kind -> the hash holding pool -> value
HASHES = {
    "size": keys.CONFIG_POOLSIZE,
    "template": keys.CONFIG_TEMPLATE,
    "clone_target": keys.CONFIG_CLONE_TARGET,
}


class OverrideStore:
    """Each change writes ``config.changed`` (pool; data: kind, value) with it."""

    def __init__(self, client: Redis, eventlog: EventLog) -> None:
        self.client = client
        self.eventlog = eventlog
        self._clear = scripts.load(client, "override_clear")

    async def all(self, kind: str) -> dict[str, str]:
        async with translated():
            return {str(k): str(v) for k, v in (await self.client.hgetall(HASHES[kind])).items()}

    async def get(self, kind: str, pool: str) -> str | None:
        async with translated():
            value = await self.client.hget(HASHES[kind], pool)
        return None if value is None else str(value)

    async def set(self, kind: str, values: dict[str, str]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(HASHES[kind], mapping=values)  # type: ignore[arg-type]
            _wake(pipe, values)
            for pool, value in values.items():
                queue_event(
                    pipe, self.eventlog.max_length, "config.changed", pool=pool, data=event_data(kind=kind, value=value)
                )
            await pipe.execute()

    async def clear(self, kind: str, pool: str) -> str | None:
        """Remove a pool's override; returns the value it had (None when there was none)."""
        async with translated():
            before = await self._clear(
                keys=[HASHES[kind], keys.EVENT_STREAM],
                args=[pool, kind, keys.EVENTS, at_field(), self.eventlog.max_length],
            )
        return None if before is None else str(before)

    async def for_pool(self, pool: str) -> dict[str, str]:
        """The overrides in force for one pool (kind -> value), in one round trip."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for key in HASHES.values():
                pipe.hget(key, pool)
            values = await pipe.execute()
        return {kind: str(v) for kind, v in zip(HASHES, values, strict=True) if v is not None}

    async def prepared(self, pool: str) -> tuple[str | None, str | None]:
        """(template, clone target) the pool's current VMs were made from; None before the first pass."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.TEMPLATE_PREPARED, pool)
            pipe.hget(keys.CLONE_TARGET_PREPARED, pool)
            template, target = await pipe.execute()
        return (None if template is None else str(template), None if target is None else str(target))

    async def set_prepared(self, pool: str, template: str, clone_target: str) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.TEMPLATE_PREPARED, pool, template)
            pipe.hset(keys.CLONE_TARGET_PREPARED, pool, clone_target)
            await pipe.execute()

    async def request_reset(self, pools: list[str]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.POOLRESET, *pools)
            _wake(pipe, pools)
            for pool in pools:
                queue_event(pipe, self.eventlog.max_length, "config.changed", pool=pool, data=event_data(kind="reset"))
            await pipe.execute()

    async def take_reset(self, pool: str) -> bool:
        """True once per reset request for ``pool`` (the manager drains it then)."""
        async with translated():
            return bool(await self.client.srem(keys.POOLRESET, pool))


def _wake(pipe: Pipeline, pools: Iterable[str]) -> None:
    """Publish each changed pool, so its manager applies the change now (see store.events)."""
    for pool in pools:
        pipe.publish(keys.EVENTS, pool)

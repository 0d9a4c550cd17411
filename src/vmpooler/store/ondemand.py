"""On-demand requests in Redis: created by the API, served by the manager's provisioner."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.events import ONDEMAND
from vmpooler.store.history import count_field
from vmpooler.store.replies import str_dict
from vmpooler.store.scripts import load

Item = tuple[str, str, int]  # (alias as requested, pool, count)


def encode_items(items: Sequence[Item]) -> str:
    """The original's ``requested`` field: ``alias:pool:count`` joined by commas."""
    return ",".join(f"{alias}:{pool}:{count}" for alias, pool, count in items)


def decode_items(requested: str) -> list[Item]:
    items = []
    for part in filter(None, requested.split(",")):
        alias, pool, count = part.rsplit(":", 2)
        items.append((alias, pool, int(count)))
    return items


class OndemandStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._create = load(client, "create_request")
        self._claim = load(client, "claim_requests")

    async def create(self, request_id: str, record: Mapping[str, str], now: float) -> bool:
        pairs = [str(x) for kv in record.items() for x in kv]
        async with translated():
            done = await self._create(
                keys=[keys.ondemand_request(request_id), keys.PROVISIONING_REQUEST], args=[request_id, now, *pairs]
            )
            if done:
                await self.client.publish(keys.EVENTS, ONDEMAND)  # the provisioner waits on this, polling slowly
        return bool(done)

    async def get(self, request_id: str) -> dict[str, str] | None:
        async with translated():
            record = str_dict(await self.client.hgetall(keys.ondemand_request(request_id)))
        return record or None

    async def update(self, request_id: str, fields: Mapping[str, str]) -> None:
        async with translated():
            await self.client.hset(keys.ondemand_request(request_id), mapping=dict(fields))  # type: ignore[arg-type]

    async def claim_new(self) -> list[str]:
        async with translated():
            return [str(i) for i in await self._claim(keys=[keys.PROVISIONING_REQUEST, keys.PROVISIONING_PROCESSING])]

    async def open_requests(self) -> list[str]:
        async with translated():
            return [str(i) for i in await self.client.zrange(keys.PROVISIONING_PROCESSING, 0, -1)]

    async def in_flight(self, limit: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``limit`` open requests, oldest first (queued, then being provisioned), with their records."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.PROVISIONING_REQUEST, 0, limit - 1)
            pipe.zrange(keys.PROVISIONING_PROCESSING, 0, limit - 1)
            queued, processing = await pipe.execute()
        ids = list(dict.fromkeys(str(i) for i in [*processing, *queued]))[:limit]
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hgetall(keys.ondemand_request(request_id))
            records = await pipe.execute() if ids else []
        return [(i, str_dict(r)) for i, r in zip(ids, records, strict=True) if r]

    async def delivered(self, request_id: str, items: Sequence[Item]) -> list[list[str]]:
        """The VMs delivered so far for each item, in item order."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for alias, pool, _ in items:
                pipe.smembers(keys.request_vms(request_id, alias, pool))
            return [sorted(str(n) for n in found) for found in await pipe.execute()]

    async def close(self, request_id: str, status: str, fields: Mapping[str, str], expire_seconds: int) -> None:
        """Give the request its final status and take it off the provisioner's list."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ondemand_request(request_id), mapping={"status": status, **fields})  # type: ignore[dict-item]
            pipe.expire(keys.ondemand_request(request_id), expire_seconds)
            pipe.zrem(keys.PROVISIONING_PROCESSING, request_id)
            pipe.zrem(keys.PROVISIONING_REQUEST, request_id)
            await pipe.execute()

    async def forget_vms(self, request_id: str, items: Sequence[Item]) -> None:
        if not items:
            return
        async with translated():
            await self.client.delete(*[keys.request_vms(request_id, a, p) for a, p, _ in items])

    async def set_demand(self, demand: Mapping[str, int]) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.ONDEMAND_DEMAND)
            if demand:
                pipe.hset(keys.ONDEMAND_DEMAND, mapping={p: str(n) for p, n in demand.items()})
            await pipe.execute()

    async def total_demand(self) -> int:
        """VMs open on-demand requests still need cloned, over every pool (``/status`` ``queue.requested``)."""
        async with translated():
            values = await self.client.hvals(keys.ONDEMAND_DEMAND)
        return sum(int(v) for v in values if str(v).isdigit())

    async def lock(self, owner: str, seconds: float) -> bool:
        """Hold (or renew) the provisioner lock; False when another manager holds it."""
        async with translated():
            if await self.client.set(keys.ONDEMAND_LOCK, owner, nx=True, px=int(seconds * 1000)):
                return True
            if await self.client.get(keys.ONDEMAND_LOCK) == owner:
                await self.client.pexpire(keys.ONDEMAND_LOCK, int(seconds * 1000))
                return True
        return False

    async def clone_failures(self, pools: Sequence[str]) -> dict[str, int]:
        async with translated():
            values = await self.client.mget([keys.clone_failures(p) for p in pools]) if pools else []
        return {p: int(v or 0) for p, v in zip(pools, values, strict=True)}

    async def permanent_error(self, pool: str) -> str | None:
        async with translated():
            value = await self.client.get(keys.clone_permanent_error(pool))
        return None if value is None else str(value)

    async def record_clone_failure(self, pool: str, message: str, permanent: bool, now: float = 0.0) -> None:
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            pipe.incr(keys.clone_failures(pool))
            pipe.hincrby(keys.history_counts(pool), count_field("failures", now or time.time()), 1)
            if permanent:
                pipe.set(keys.clone_permanent_error(pool), message, ex=300)
            await pipe.execute()

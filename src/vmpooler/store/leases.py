"""Leases that split the pools between several managers: one reconciler per pool at a time."""

from __future__ import annotations

from collections.abc import Iterable

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.scripts import load


class LeaseStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._take = load(client, "lease")
        self._release = load(client, "lease_release")

    async def take(self, pools: Iterable[str], owner: str, seconds: float) -> dict[str, str | None]:
        """Take or renew each pool's lease, all in one script call: pool -> fencing value, None if held elsewhere."""
        names = list(pools)
        if not names:
            return {}
        lease_keys = [key for pool in names for key in (keys.lease(pool), keys.lease_fence(pool))]
        async with translated():
            replies = await self._take(keys=lease_keys, args=[owner, int(seconds * 1000)])
        return {pool: None if reply is None else str(reply) for pool, reply in zip(names, replies, strict=True)}

    async def release(self, pools: Iterable[str], owner: str) -> None:
        names = list(pools)
        if not names:
            return
        async with translated():
            await self._release(keys=[keys.lease(pool) for pool in names], args=[owner])

    async def holders(self, pools: Iterable[str]) -> dict[str, str | None]:
        """pool -> the manager holding its lease now, or None."""
        names = list(pools)
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in names:
                pipe.hget(keys.lease(pool), "owner")
            replies = await pipe.execute()
        return {pool: None if r is None else str(r) for pool, r in zip(names, replies, strict=True)}

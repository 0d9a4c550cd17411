"""Splits the pools between the managers sharing one Redis, through leases with fencing values.

Each manager holds the leases of at most its fair share of the pools (pools / live managers,
rounded up) and renews them every third of a lease period, whether or not a pass is running. A
manager that dies stops renewing: its leases lapse and the others take its pools within two lease
periods. A manager that holds more than its share (a new manager joined) lets the excess go, and
the newcomer picks them up. A pool's reconciler only runs while this manager holds its lease, and
the fencing value it was given is checked by Redis when it records a new clone, so a manager that
stalled past its lease cannot over-fill a pool its successor is filling.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence

from vmpooler.errors import StoreError
from vmpooler.manager.cadence import every
from vmpooler.metrics.base import Metrics
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")


class LeaseKeeper:
    def __init__(
        self,
        store: Store,
        manager_id: str,
        pools: Sequence[str],
        lease_seconds: float,
        heartbeat_ttl: float,
        on_change: Callable[[str, str], None],
    ) -> None:
        self.store = store
        self.manager_id = manager_id
        self.pools = list(pools)
        self.lease_seconds = lease_seconds
        self.heartbeat_ttl = heartbeat_ttl
        #: called with (pool, fence) when a lease is won or renewed with a new fence, (pool, "") when lost
        self.on_change = on_change
        #: pool -> fencing value, for the leases this manager holds
        self.held: dict[str, str] = {}
        self.changed = asyncio.Event()

    def holds(self, pool: str) -> bool:
        return pool in self.held

    async def run(self, stop: asyncio.Event, metrics: Metrics) -> None:
        # while Redis is down we keep what we think we hold: the fencing value protects the pools if a lease lapses
        await every(self.lease_seconds / 3, stop, self.renew_once, name="leases", metrics=metrics)
        await self.release_all()

    async def renew_once(self) -> None:
        """Renew held leases, give up any beyond the fair share, take free ones up to it."""
        managers = max(1, await self.store.live_managers(time.time() - self.heartbeat_ttl))
        share = math.ceil(len(self.pools) / managers)
        renewed = await self.store.leases.take(list(self.held), self.manager_id, self.lease_seconds)
        for pool, fence in renewed.items():
            if fence is None:
                log.warning("manager %s: lost the lease on pool %s to another manager", self.manager_id, pool)
                self._set(pool, None)
            elif fence != self.held[pool]:
                # the lease lapsed (Redis or this manager stalled) and was taken afresh: writes need the new fence
                log.info("manager %s: took the lapsed lease on pool %s again (fence %s)", self.manager_id, pool, fence)
                self._set(pool, fence)
        if len(self.held) > share:
            excess = sorted(self.held)[share:]
            await self.store.leases.release(excess, self.manager_id)
            for pool in excess:
                log.info("manager %s: hands pool %s to another manager (%d managers)", self.manager_id, pool, managers)
                self._set(pool, None)
        wanted = share - len(self.held)
        if wanted > 0:
            free = [pool for pool, owner in (await self.store.leases.holders(self.pools)).items() if owner is None]
            taken = await self.store.leases.take(free[:wanted], self.manager_id, self.lease_seconds)
            for pool, fence in taken.items():
                if fence is not None:
                    log.info("manager %s: now reconciles pool %s (fence %s)", self.manager_id, pool, fence)
                    self._set(pool, fence)

    async def release_all(self) -> None:
        """Let the other managers take over at once (a clean stop), rather than after the lease lapses."""
        try:
            await self.store.leases.release(list(self.held), self.manager_id)
        except StoreError:
            pass  # they lapse on their own
        for pool in list(self.held):
            self._set(pool, None)

    def _set(self, pool: str, fence: str | None) -> None:
        if fence is None:
            self.held.pop(pool, None)
        else:
            self.held[pool] = fence
        self.on_change(pool, fence or "")
        self.changed.set()

"""Failover: a pool's checkouts served from its ``fallback`` pools while it is degraded or empty.

A degraded pool (its manager's circuit breaker open: what /status reports) hands its checkouts to its
fallbacks first, keeping itself as the last resort. An empty pool hands them over at once
(``fallback_after_s: 0``) or after waiting that long for a VM of its own. Traffic returns by itself: the
breaker's first successful probe clone clears the degraded mark, and the pool's own ready VMs come first
again. Only the API decides this; the manager keeps filling every pool as configured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from vmpooler.config import Settings
from vmpooler.store.redis import Store

Taken = list[tuple[str, str]]
Take = Callable[[Sequence[Sequence[str]]], Awaitable[Taken | int]]
#: seconds between tries of an empty pool while a checkout waits for it (``fallback_after_s``)
POLL_SECONDS = 0.2


class Failover:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sleep = sleep

    def _fallback(self, pool: str) -> tuple[list[str], float]:
        config = self.settings.pool(pool)
        return (list(config.fallback), config.fallback_after_s) if config is not None else ([], 0.0)

    def involved(self, requests: Sequence[Sequence[str]]) -> bool:
        return any(self._fallback(pool)[0] for candidates in requests for pool in candidates)

    async def checkout(self, requests: Sequence[Sequence[str]], take: Take) -> tuple[Taken | int, list[list[str]]]:
        """``take`` with each request's candidates widened by their pools' fallbacks, as due now; also
        returns the candidates it took from last (replacements of VMs that fail their check use them)."""
        degraded = set(await self.store.health.degraded())
        now_ready = [self._widen(c, degraded, waited=False) for c in requests]
        taken = await take(now_ready)
        if not isinstance(taken, int):
            return taken, now_ready
        wait = max((self._fallback(pool)[1] for candidates in requests for pool in candidates), default=0.0)
        if wait <= 0:
            return taken, now_ready
        deadline = self.clock() + wait
        while self.clock() < deadline:
            await self.sleep(min(POLL_SECONDS, max(0.0, deadline - self.clock())))
            taken = await take(now_ready)
            if not isinstance(taken, int):
                return taken, now_ready
        widened = [self._widen(c, degraded, waited=True) for c in requests]
        return await take(widened), widened

    def _widen(self, candidates: Sequence[str], degraded: set[str], waited: bool) -> list[str]:
        order: list[str] = []
        for pool in candidates:
            fallback, after = self._fallback(pool)
            if fallback and pool in degraded:
                order += [*fallback, pool]
            elif fallback and (after <= 0 or waited):
                order += [pool, *fallback]
            else:
                order.append(pool)
        return list(dict.fromkeys(order))

    @staticmethod
    def served_by_fallback(requests: Sequence[Sequence[str]], taken: Taken) -> list[bool]:
        """For each VM taken, whether it came from a pool other than its request's own candidates."""
        return [pool not in requests[i] for i, (pool, _) in enumerate(taken)]

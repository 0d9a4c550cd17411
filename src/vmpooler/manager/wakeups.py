"""Wakes a sleeping pool loop as soon as the API reports a change to its pool (pub/sub)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from vmpooler.errors import StoreError
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")


class Wakeups:
    """One subscription per manager instead of one poll per pool per second.

    While the subscription is down (Redis restarting, a network blip) ``listening`` is False and
    the pool loops fall back to polling, so a missed message only delays a refill, never loses it.
    """

    def __init__(self, store: Store, pools: Iterable[str]) -> None:
        self.store = store
        self.flags = {pool: asyncio.Event() for pool in pools}
        self.listening = False

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                async for pool in self.store.events.pool_events(poll_seconds=1.0):
                    self.listening, backoff = True, 0.5
                    if pool is not None and pool in self.flags:
                        self.flags[pool].set()
                    if stop.is_set():
                        return
            except StoreError as exc:
                if self.listening:
                    log.warning("manager: lost the pool event subscription, polling meanwhile: %s", exc)
            finally:
                self.listening = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, 10.0)

    def wake(self, pool: str) -> None:
        self.flags[pool].set()

    def before_pass(self, pool: str) -> None:
        """Forget earlier wake-ups: the pass about to run sees their effect."""
        self.flags[pool].clear()

    async def sleep(self, pool: str, seconds: float, stop: asyncio.Event) -> None:
        """Until ``seconds`` pass, the pool is notified, or ``stop`` is set."""
        waiters = [asyncio.ensure_future(self.flags[pool].wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

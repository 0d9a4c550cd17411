"""Wakes a sleeping pool loop (or the task or on-demand loop) as soon as the API reports a change (pub/sub)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable

from vmpooler.errors import StoreError
from vmpooler.manager.cadence import Sleep, every, wait
from vmpooler.metrics.base import Metrics
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")

#: after the subscription drops, subscribe again after this long, doubling up to RETRY_MAX while it keeps failing
RETRY_FIRST = 0.5
RETRY_MAX = 10.0


class Wakeups:
    """One subscription per manager instead of one poll per pool per second.

    While the subscription is down (Redis restarting, a network blip) ``listening`` is False and
    the pool loops fall back to polling, so a missed message only delays a refill, never loses it.
    """

    def __init__(self, store: Store, pools: Iterable[str]) -> None:
        self.store = store
        self.flags = {pool: asyncio.Event() for pool in pools}
        self.listening = False
        self._retry = RETRY_FIRST

    async def run(self, stop: asyncio.Event, metrics: Metrics) -> None:
        await every(self._next_retry, stop, functools.partial(self.listen, stop), name="wakeups", metrics=metrics)

    async def listen(self, stop: asyncio.Event) -> None:
        """Until the subscription drops (then ``run`` subscribes again, backing off) or ``stop`` is set."""
        try:
            async for pool in self.store.events.pool_events(poll_seconds=1.0):
                self.listening, self._retry = True, RETRY_FIRST
                if pool is not None and pool in self.flags:
                    self.flags[pool].set()
                if stop.is_set():
                    return
        except StoreError as exc:
            # a warning when the subscription is lost, not for every failed try while Redis stays down
            if self.listening:
                log.warning("manager: lost the pool event subscription, polling meanwhile: %s", exc)
        finally:
            self.listening = False

    def _next_retry(self) -> float:
        retry, self._retry = self._retry, min(self._retry * 2, RETRY_MAX)
        return retry

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


def idle_sleep(wakeups: Wakeups | None, name: str, busy: Callable[[], bool], idle_seconds: float) -> Sleep:
    """A ``sleep`` for ``cadence.every`` (the task and on-demand loops): the loop's interval while
    ``busy()`` or while the subscription is down (or there is none); otherwise up to ``idle_seconds``,
    ended at once by a wake-up of ``name``. Wake-ups before the next pass are forgotten: it sees them."""

    async def sleep(seconds: float, stop: asyncio.Event) -> None:
        if wakeups is None or not wakeups.listening or busy():
            await wait(stop, seconds)
            return
        await wakeups.sleep(name, idle_seconds, stop)
        wakeups.before_pass(name)

    return sleep

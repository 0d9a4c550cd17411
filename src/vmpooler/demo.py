"""Demo traffic for ``make run``: a few simulated users check VMs out and return them, so the dashboard
has something to show. It goes through the same service layer as the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from vmpooler.api.services.vms import VMService
from vmpooler.auth.tokens import Identity
from vmpooler.errors import ApiError, StoreError

log = logging.getLogger("vmpooler.demo")

USERS = ("alice", "bob", "ci-nightly")


async def demo_traffic(
    service: VMService,
    stop: asyncio.Event,
    seed: int | None = None,
    pause: tuple[float, float] = (2, 6),
    hold: tuple[float, float] = (20, 120),
) -> None:
    """Every ``pause`` seconds one user checks out one or two VMs; each is returned ``hold`` s later."""
    rng = random.Random(seed)
    held: list[tuple[float, str]] = []
    pools = service.pool_names()
    while not stop.is_set() and pools:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(*pause))
        try:
            now = time.monotonic()
            for due, name in [h for h in held if h[0] <= now]:
                held.remove((due, name))
                with contextlib.suppress(ApiError):
                    await service.give_back(name)
            user = rng.choice(USERS)
            owner = Identity(user, f"demo-{user}")
            pool = rng.choice(pools)
            with contextlib.suppress(ApiError):  # an empty pool is part of the show
                for taken in await service.checkout({pool: rng.choice((1, 1, 2))}, owner):
                    held.append((now + rng.uniform(*hold), taken.hostname))
        except StoreError as exc:
            log.warning("demo traffic paused: %s", exc)

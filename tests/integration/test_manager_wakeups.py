"""An idle manager waits on pool events instead of polling, and a checkout wakes its pool at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.pools import dummy, settings_with
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store.redis import Store

POOLS = [{"name": f"p{i}", "template": "t", "size": 2} for i in range(20)]


async def command_calls(store: Store, command: str) -> int:
    stats = await store.client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def wait_for(condition, timeout: float = 20.0) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await condition():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_idle_pools_cost_no_polling_and_a_checkout_is_refilled_at_once(
    store: Store, inventory_file: Path
) -> None:
    # passes of a quiet pool are 30-60 s apart: only an event can explain a quick refill
    settings = settings_with(POOLS, check_loop_delay_min=30, check_loop_delay_max=60, check_loop_delay_decay=2)
    manager = Manager(settings, store, {"dummy": dummy(inventory_file)}, call_timeout=10, ready_poll_interval=0.02)
    names = [p["name"] for p in POOLS]
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:

        async def full() -> bool:
            counts = await store.counts(names)
            return all(c[VMState.READY] == 2 for c in counts.values()) and manager.wakeups.listening

        await wait_for(full)
        await asyncio.sleep(1.5)  # the passes that filled the pools are over
        before = await command_calls(store, "scard")
        await asyncio.sleep(3)
        # polling would read 3 set sizes per pool per second: 180 calls here
        assert await command_calls(store, "scard") - before < 10

        taken = await store.checkout([["p7"]], time.time())
        assert isinstance(taken, list)

        async def refilled() -> bool:
            return (await store.counts(["p7"]))["p7"][VMState.READY] == 2

        assert await wait_for(refilled, timeout=10) < 5
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

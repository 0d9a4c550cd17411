"""An idle manager waits on pool events instead of polling, and a checkout wakes its pool at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from tests.support.pools import dummy, settings_with
from tests.support.waiting import until
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

POOLS = [{"name": f"p{i}", "template": "t", "size": 2} for i in range(20)]


async def command_calls(store: Store, command: str) -> int:
    stats = await store.client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_idle_pools_cost_no_polling_and_a_checkout_is_refilled_at_once(
    store: Store, inventory_file: Path
) -> None:
    # passes of a quiet pool are 30-60 s apart: only an event can explain a quick refill
    settings = settings_with(POOLS, check_loop_delay_min=30, check_loop_delay_max=60, check_loop_delay_decay=2)
    # the history sampler reads every pool's counts once a minute: its SCARDs are not the pool loops'
    # polling, and at second :02 they used to land in the window below about one run in 20
    manager = Manager(
        settings,
        store,
        {"dummy": dummy(inventory_file)},
        call_timeout=10,
        ready_poll_interval=0.02,
        history_wait=lambda _now: 3600.0,
    )
    names = [p["name"] for p in POOLS]
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:

        async def full() -> bool:
            counts = await store.counts(names)
            return all(c[VMState.READY] == 2 for c in counts.values()) and manager.wakeups.listening

        await until(full, "every pool full and the subscription up")
        await asyncio.sleep(1.5)  # the passes that filled the pools are over
        before = await command_calls(store, "scard")
        await asyncio.sleep(3)
        # polling would read 3 set sizes per pool per second: 180 calls here
        assert await command_calls(store, "scard") - before < 10

        taken = await store.checkout([["p7"]], time.time())
        assert isinstance(taken, list)

        async def refilled() -> bool:
            return (await store.counts(["p7"]))["p7"][VMState.READY] == 2

        assert (await until(refilled, "p7 refilled", timeout=10)).seconds < 5
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_quiet_pool_reads_nothing_yet_sees_changes_no_event_announced(
    store: Store, inventory_file: Path, redis_port: int
) -> None:
    # passes every 0.25 s, and nothing comes due (checks hourly, VMs ready for a day)
    settings = settings_with(
        POOLS, check_loop_delay_min=0.25, check_loop_delay_max=0.25, vm_checktime=60, ready_ttl=1440
    )
    provider = dummy(inventory_file)
    manager = Manager(
        settings, store, {"dummy": provider}, call_timeout=10, ready_poll_interval=0.02, history_wait=lambda _: 3600.0
    )
    names = [p["name"] for p in POOLS]
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:

        async def full() -> bool:
            counts = await store.counts(names)
            return all(c[VMState.READY] == 2 and c[VMState.PENDING] == 0 for c in counts.values())

        await until(full, "every pool full, nothing pending")
        await asyncio.sleep(1.5)  # the passes that filled the pools are over
        reconcilers = manager.reconcilers.values()
        passes, reads = sum(r.passes for r in reconcilers), sum(r.full_passes for r in reconcilers)
        await asyncio.sleep(3)
        # a full pass reads its pool (one view script); a quiet one reads nothing of it, only the census
        # all pools share (one script, at most every 5 s)
        passes, reads = sum(r.passes for r in reconcilers) - passes, sum(r.full_passes for r in reconcilers) - reads
        assert passes >= 20 * 8, passes
        assert reads <= 0.05 * passes, (reads, passes)

        # a VM the provider lost, and one moved as the original vmpooler would, with no event either
        (lost, *_) = await store.members("p3", VMState.READY)
        (retired, *_) = await store.members("p5", VMState.READY)
        await provider.destroy_vm(manager.reconcilers["p3"].ctx.target, lost)
        client = redis.Redis(port=redis_port, decode_responses=True)
        client.smove(keys.state_set(VMState.READY, "p5"), keys.state_set(VMState.COMPLETED, "p5"), retired)

        async def handled() -> bool:
            return (
                lost not in await store.members("p3", VMState.READY)
                and retired not in provider.all_vms().get("p5", [])
                and await full()
            )

        assert (await until(handled, "the lost and the moved VM handled", timeout=20)).seconds < 10
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

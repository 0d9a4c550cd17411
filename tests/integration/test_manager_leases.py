"""Several managers on one Redis split the pools through leases; fencing stops a stale one over-filling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.pools import dummy, settings_with
from tests.support.waiting import until
from vmpooler.errors import LeaseLost
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store.redis import Store

POOLS = [{"name": f"p{i}", "template": "t", "size": 2} for i in range(4)]


async def test_a_lease_is_held_by_one_owner_and_renewed_with_the_same_fence(store: Store) -> None:
    first = await store.leases.take(["p0"], "a", 5)
    assert first == {"p0": "1"}
    assert await store.leases.take(["p0"], "b", 5) == {"p0": None}
    assert await store.leases.take(["p0"], "a", 5) == {"p0": "1"}
    assert await store.leases.holders(["p0", "p1"]) == {"p0": "a", "p1": None}
    await store.leases.release(["p0"], "b")  # not b's to release
    assert await store.leases.holders(["p0"]) == {"p0": "a"}
    await store.leases.release(["p0"], "a")
    assert await store.leases.take(["p0"], "b", 5) == {"p0": "2"}  # a new holder, a larger fence


async def test_a_stale_fence_cannot_record_a_clone(store: Store) -> None:
    old = (await store.leases.take(["p0"], "a", 0.05))["p0"]
    assert old is not None
    await asyncio.sleep(0.1)  # a's lease lapses (a stalled manager)...
    new = (await store.leases.take(["p0"], "b", 5))["p0"]  # ...and b takes over
    assert new is not None and int(new) > int(old)

    with pytest.raises(LeaseLost):
        await store.create_pending("p0", "vm-stale", {"clone": "x"}, fence=old)
    assert await store.vm("vm-stale") == {}
    assert await store.create_pending("p0", "vm-fresh", {"clone": "x"}, fence=new)
    assert await store.members("p0", VMState.PENDING) == {"vm-fresh"}


@contextlib.asynccontextmanager
async def running(manager: Manager) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_two_managers_split_the_pools_and_one_takes_all_when_the_other_stops(
    store: Store, inventory_file: Path
) -> None:
    settings = settings_with(POOLS, manager_lease_seconds=3, task_limit=4)

    def new_manager() -> Manager:
        return Manager(settings, store, {"dummy": dummy(inventory_file)}, call_timeout=10, ready_poll_interval=0.02)

    a, b = new_manager(), new_manager()
    names = [p["name"] for p in POOLS]
    async with running(a) as stop_a:
        await until(lambda: _all_held_by(store, names, {a.manager_id}), "a to hold every lease")
        async with running(b):

            async def split() -> bool:
                holders = list((await store.leases.holders(names)).values())
                return holders.count(a.manager_id) == 2 and holders.count(b.manager_id) == 2

            await until(split, "the leases split 2/2")
            assert set(a.leases.held).isdisjoint(b.leases.held)

            async def full() -> bool:
                counts = await store.counts(names)
                return all(c[VMState.READY] == 2 for c in counts.values())

            await until(full, "every pool full")
            stop_a.set()  # a stops cleanly and hands its pools over at once
            await until(lambda: _all_held_by(store, names, {b.manager_id}), "b to take every lease", timeout=3 * 3)
            assert sorted(b.leases.held) == names
            counts = await store.counts(names)
            assert all(c[VMState.READY] + c[VMState.PENDING] <= 2 for c in counts.values())


async def _all_held_by(store: Store, pools: list[str], owners: set[str]) -> bool:
    return set((await store.leases.holders(pools)).values()) == owners

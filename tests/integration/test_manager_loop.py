"""The manager's cadence as it runs in production: wake-ups on checkout, clean stop, Redis outages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.exceptions

from tests.support.clock import Clock
from tests.support.pools import dummy, manager_for, settings_with
from tests.support.servers import make_store, start_redis
from tests.support.waiting import until
from vmpooler.manager.cadence import CRASH_CAUSE
from vmpooler.manager.loop import Manager
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "t/deb", "size": 2}
#: what a check against a Redis that is down or still loading raises
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


async def ready(store: Store, n: int) -> bool:
    return (await store.counts(["deb"]))["deb"][VMState.READY] == n


async def test_a_checkout_wakes_an_idle_pool_long_before_its_max_delay(store: Store, inventory_file: Path) -> None:
    settings = settings_with([POOL], check_loop_delay_min=0.05, check_loop_delay_max=30, check_loop_delay_decay=4)
    manager = manager_for(settings, store, dummy(inventory_file))
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop))
    await until(lambda: ready(store, 2), "2 ready VMs", timeout=15)
    await asyncio.sleep(1.0)  # idle: the delay has grown towards 30 s
    assert isinstance(await store.checkout([["deb"]], now=time.time()), list)
    refill = (await until(lambda: ready(store, 2), "the checked-out VM replaced", timeout=15)).seconds
    assert refill < 5, f"refilled after {refill:.1f}s; the wake-up did not fire"
    stop.set()
    await asyncio.wait_for(running, 15)


async def test_stop_lets_in_flight_clones_finish_and_leaves_records(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, createvm_max_time=0.5)
    manager = manager_for(settings_with([{**POOL, "size": 3}]), store, provider)
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop, grace=10))
    await until(lambda: _pending(store), "a clone in flight", timeout=15)
    stop.set()
    await asyncio.wait_for(running, 15)
    members = await store.all_members("deb")
    known = set().union(*members.values())
    assert set(provider.all_vms().get("deb", [])) <= known, "a VM exists that Redis does not know"


async def _pending(store: Store) -> bool:
    return (await store.counts(["deb"]))["deb"][VMState.PENDING] > 0


async def test_manager_rides_out_a_redis_restart(tmp_path: Path, inventory_file: Path) -> None:
    server = start_redis(tmp_path / "r", appendonly=True)
    store = make_store(server.port)
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop))
    try:
        await until(lambda: ready(store, 2), "2 ready VMs", timeout=15)
        before = await store.members("deb", VMState.READY)
        server.stop()  # SIGTERM: Redis writes its AOF
        await asyncio.sleep(2.5)  # passes fail meanwhile; the manager must not die
        assert not running.done()
        server = start_redis(tmp_path / "r", port=server.port, appendonly=True)
        # while Redis is still starting, the check itself fails to connect: that (only) means "not yet"
        await until(lambda: ready(store, 2), "2 ready VMs after the restart", timeout=15, retry_on=REDIS_DOWN)
        assert await store.members("deb", VMState.READY) == before
        assert set(provider.all_vms()["deb"]) == before
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
        await store.close()
        server.stop()


class SinkWithABug(Metrics):
    """A metrics sink that raises for one pool (a real bug a plugin can have) and keeps the error counts."""

    def __init__(self, broken_pool: str) -> None:
        self.broken_pool = broken_pool
        self.errors: list[tuple[str, str]] = []

    def manager_pass(self, pool: str, seconds: float) -> None:
        if pool == self.broken_pool:
            raise RuntimeError(f"sink bug for {pool}")

    def error(self, cause: str, pool: str) -> None:
        self.errors.append((cause, pool))


async def test_one_pools_bug_is_counted_and_backed_off_while_the_others_fill_and_stop_is_prompt(
    store: Store, inventory_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_with([POOL, {**POOL, "name": "broken", "size": 1}], check_loop_delay_max=30)
    sink = SinkWithABug("broken")
    manager = Manager(
        settings, store, {"dummy": dummy(inventory_file)}, clock=Clock(), metrics=sink, ready_poll_interval=0.02
    )
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop))

    async def crashes() -> int:
        return sink.errors.count((CRASH_CAUSE, "broken"))

    await until(lambda: ready(store, 2), "the healthy pool filled", timeout=15)
    await until(crashes, "the broken pool's loop crashing again after its backoff", done=lambda n: n >= 3, timeout=15)
    assert not running.done(), "one pool's bug ended the manager"
    assert any("pool broken: pass crashed" in r.getMessage() and r.exc_info for r in caplog.records)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(running, 15)
    assert time.monotonic() - started < 3, "stop did not end the loops promptly"

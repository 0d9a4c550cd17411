"""An in-process pool manager over a real Redis for the manager benchmarks: many pools' settings, the dummy
provider with instant or fixed-time clones, and counters of Redis round trips and commands."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio.connection as redis_connection

from vmpooler.config import Settings, parse_settings
from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.manager.loop import Manager
from vmpooler.providers.dummy import DummyOptions, DummyProvider
from vmpooler.states import VMState
from vmpooler.store.redis import Store


class RoundTrips:
    """Counts every request redis-py writes to a connection in this process (a pipeline is one)."""

    count = 0
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        original = redis_connection.AbstractConnection.send_packed_command

        async def counted(self: Any, command: Any, check_health: bool = True) -> None:
            cls.count += 1
            await original(self, command, check_health)

        redis_connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        cls._installed = True


async def command_calls(store: Store) -> Counter[str]:
    """Calls so far of every Redis command but INFO (the benchmark's own), from ``INFO commandstats``."""
    stats = await store.client.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"})


def pool_name(i: int) -> str:
    return f"pool{i:04d}"


def pool_sizes(pools: int, vms: int) -> list[int]:
    """``pools`` sizes summing to ``vms``: 1..(2*avg - 1) in turn, so pools differ in size."""
    average = vms // pools
    sizes = [1 + i % (2 * average - 1) for i in range(pools)] if average >= 2 else [average] * pools
    for i in range(vms - sum(sizes)):  # whatever is left over, one more VM each from the start
        sizes[i % pools] += 1
    return sizes


def settings_for(sizes: Sequence[int], task_limit: int, **config: Any) -> Settings:
    pools = [{"name": pool_name(i), "template": pool_name(i), "size": size} for i, size in enumerate(sizes)]
    raw = {"pools": pools, "config": {"task_limit": task_limit, **config}, "providers": {"dummy": {}}}
    settings, _ = parse_settings(raw, env={})
    return settings


#: the dummy provider at its fastest: clones finish at once and boot in no time
INSTANT = DummyOptions(filename=None, ready_delay=0, createvm_max_time=0, seed=7)


class FixedCloneDummy(DummyProvider):
    """The in-memory dummy whose every clone takes exactly ``clone_seconds`` (the stock one draws a random
    time), so ``task_limit / clone_seconds`` is an exact upper bound on the fill rate."""

    def __init__(self, name: str, clone_seconds: float, inventory: Path | None = None) -> None:
        super().__init__(name, INSTANT.model_copy(update={"filename": str(inventory) if inventory else None}))
        self.clone_seconds = clone_seconds

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        await asyncio.sleep(self.clone_seconds)
        return await super().create_vm(pool, name)


def manager_for(settings: Settings, store: Store, provider: DummyProvider | None = None, **options: Any) -> Manager:
    provider = provider or DummyProvider("dummy", INSTANT)
    return Manager(settings, store, {"dummy": provider}, ready_poll_interval=0.01, **options)


async def ready_total(store: Store, pools: Sequence[str]) -> int:
    return sum(c[VMState.READY] for c in (await store.counts(list(pools))).values())


async def fill_by_passes(store: Store, manager: Manager, target: int, max_seconds: float) -> tuple[int, float, int]:
    """``run_once()`` (and a 10 ms pause) until ``target`` VMs are ready or time is up; returns
    (VMs ready, seconds, passes). Every clone task has finished when it returns."""
    pools = list(manager.reconcilers)
    started = time.perf_counter()
    passes = 0
    while (ready := await ready_total(store, pools)) < target:
        if time.perf_counter() - started > max_seconds:
            break
        await manager.run_once()
        passes += 1
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    for reconciler in manager.reconcilers.values():
        await reconciler.lifecycle.drain(30)
    return ready, seconds, passes

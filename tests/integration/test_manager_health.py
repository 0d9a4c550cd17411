"""A pool whose clones keep failing stops cloning, says why in /status, probes, and recovers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.clock import Clock
from tests.support.pools import dummy, run_until, settings_with, settle
from vmpooler.api.services.status import StatusService
from vmpooler.manager.breaker import BreakerState
from vmpooler.manager.loop import Manager
from vmpooler.providers.dummy import DummyProvider
from vmpooler.states import VMState
from vmpooler.store.redis import Store


def manager(settings: Any, store: Store, providers: dict[str, DummyProvider], clock: Clock) -> Manager:
    return Manager(settings, store, providers, clock=clock, call_timeout=10, ready_poll_interval=0.02)


async def clones_started(store: Store, pool: str) -> int:
    """Every VM the pool ever recorded (each one is a clone attempt), whatever became of it."""
    members = await store.all_members(pool)
    destroyed = await store.client.keys("vmpooler__vm__*")
    return max(sum(len(v) for v in members.values()), len(destroyed))


async def status_of(settings: Any, store: Store) -> dict[str, Any]:
    return await StatusService(settings, store).status()


async def test_failing_clones_open_the_breaker_report_it_and_recover(store: Store, inventory_file: Path) -> None:
    settings = settings_with(
        [{"name": "deb", "template": "t/deb", "size": 2}],
        circuit_breaker_failure_threshold=3,
        circuit_breaker_timeout=30,
        task_limit=1,
    )
    provider = dummy(inventory_file, createvm_fail_percent=100)
    clock = Clock()
    m = manager(settings, store, {"dummy": provider}, clock)
    await m.register_pools()
    breaker = m.reconcilers["deb"].ctx.breaker

    async def opened() -> bool:
        await settle(m)
        return breaker.state is BreakerState.OPEN

    await run_until(m, opened)
    attempts = await clones_started(store, "deb")
    assert attempts == 3  # one at a time (task_limit 1): exactly the threshold, then it stopped

    for _ in range(10):  # during the backoff no pass starts a clone
        await m.run_once()
        await settle(m)
    assert await clones_started(store, "deb") == attempts

    report = await status_of(settings, store)
    assert report["status"]["ok"] is False
    assert report["status"]["degraded"] == ["deb"]
    assert "injected" in report["pools"]["deb"]["degraded"]["problem"]
    assert "deb: clone failed" in report["status"]["message"]

    provider.options.createvm_fail_percent = 0  # the platform is fixed
    clock.offset += 31  # the backoff is over: one probe goes out, succeeds, and closes the breaker

    async def filled() -> bool:
        await settle(m)
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2

    await run_until(m, filled)
    assert breaker.state is BreakerState.CLOSED
    report = await status_of(settings, store)
    assert report["status"]["ok"] is True and "degraded" not in report["status"]
    assert "degraded" not in report["pools"]["deb"]


async def test_an_unknown_template_stops_cloning_after_the_first_answer(store: Store, inventory_file: Path) -> None:
    settings = settings_with([{"name": "deb", "template": "t/nope", "size": 4}], task_limit=2)
    provider = dummy(inventory_file, templates=["t/deb"])
    m = manager(settings, store, {"dummy": provider}, Clock())
    await m.register_pools()
    for _ in range(6):
        await m.run_once()
        await settle(m)
    assert await clones_started(store, "deb") <= 2  # the clones already in flight, no more
    report = await status_of(settings, store)
    problem = report["pools"]["deb"]["degraded"]["problem"]
    assert "template 't/nope' not found" in problem
    assert report["pools"]["deb"]["degraded"]["retry_at"] > time.time()


async def test_an_unreachable_provider_degrades_its_pool_only(store: Store, tmp_path: Path) -> None:
    broken_inventory = tmp_path / "broken.json"
    broken_inventory.write_text("this is not JSON")
    settings = settings_with(
        [
            {"name": "deb", "template": "t/deb", "size": 1, "provider": "broken"},
            {"name": "el", "template": "t/el", "size": 2, "provider": "dummy"},
        ]
    )
    providers = {"broken": dummy(broken_inventory), "dummy": dummy(tmp_path / "good.json")}
    m = manager(settings, store, providers, Clock())
    await m.register_pools()

    async def other_pool_full() -> bool:
        await settle(m)
        return (await store.counts(["el"]))["el"][VMState.READY] == 2

    await run_until(m, other_pool_full)
    report = await status_of(settings, store)
    assert report["status"]["degraded"] == ["deb"]
    assert "cannot list the pool's VMs" in report["pools"]["deb"]["degraded"]["problem"]
    assert "broken.json" in report["pools"]["deb"]["degraded"]["problem"]  # names the unreadable inventory

    broken_inventory.write_text('{"pools": {}}')  # the platform answers again

    async def recovered() -> bool:
        await settle(m)
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 1

    await run_until(m, recovered)
    assert "degraded" not in (await status_of(settings, store))["status"]


async def test_a_providers_max_vms_bounds_all_its_pools_together(store: Store, inventory_file: Path) -> None:
    settings = settings_with(
        [{"name": "a", "template": "t", "size": 4}, {"name": "b", "template": "t", "size": 4}], task_limit=10
    )
    provider = dummy(inventory_file, max_vms=5)
    m = manager(settings, store, {"dummy": provider}, Clock())
    await m.register_pools()
    for _ in range(8):
        await m.run_once()
        await settle(m)
    counts = await store.counts(["a", "b"])
    assert sum(sum(c.values()) for c in counts.values()) == 5  # 8 wanted, the quota allows 5
    assert sum(len(v) for v in provider.all_vms().values()) == 5

    taken = await store.checkout([["a"]], time.time())
    assert isinstance(taken, list)
    await store.move("a", taken[0][1], VMState.RUNNING, VMState.COMPLETED)  # returned, then destroyed

    async def back_to_five() -> bool:
        await settle(m)
        return sum(len(v) for v in provider.all_vms().values()) == 5 and taken[0][1] not in provider.all_vms()["a"]

    await run_until(m, back_to_five)
    assert sum(len(v) for v in provider.all_vms().values()) <= 5

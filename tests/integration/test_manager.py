"""The pool manager against a real Redis and the dummy provider: fill, failures, expiry, leak cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from tests.support.clock import Clock
from tests.support.pools import dummy, manager_for, run_until, settings_with, settle, with_pool_minutes
from vmpooler.manager.loop import Manager
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "templates/deb", "size": 3}


async def ready_count(store: Store, pool: str = "deb") -> int:
    return (await store.counts([pool]))[pool][VMState.READY]


def assert_one_state_each(members: dict[VMState, set[str]]) -> None:
    seen: list[str] = [name for state in LIVE_STATES for name in members[state]]
    assert len(seen) == len(set(seen)), f"a VM is in two states: {members}"


async def test_fills_pool_to_size(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    await manager.register_pools()
    await run_until(manager, lambda: _ready_at_least(store, 3))
    await manager.run_once()
    members = await store.all_members("deb")
    assert len(members[VMState.READY]) == 3 and not members[VMState.PENDING]
    assert set(provider.all_vms().get("deb", [])) == members[VMState.READY]
    record = await store.vm(next(iter(members[VMState.READY])))
    assert record["pool"] == "deb" and record["ready"] and record["clone_time"]
    assert await store.client.smembers(keys.POOLS) == {"deb"}


async def _ready_at_least(store: Store, n: int, pool: str = "deb") -> bool:
    return await ready_count(store, pool) >= n


async def test_task_limit_bounds_concurrent_clones(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, createvm_max_time=0.3)
    manager = manager_for(settings_with([{**POOL, "size": 8}], task_limit=2), store, provider)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await store.client.zcard(keys.CLONE_SLOTS))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    await run_until(manager, lambda: _ready_at_least(store, 8), timeout=30)
    watcher.cancel()
    assert 1 <= peak <= 2


async def test_failed_clones_are_destroyed_and_replaced(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, createvm_fail_percent=50, seed=3)
    manager = manager_for(settings_with([POOL]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3), timeout=30)
    await settle(manager)

    async def clean() -> bool:
        members = await store.all_members("deb")
        return not members[VMState.FAILED] and set(provider.all_vms().get("deb", [])) == members[VMState.READY]

    await run_until(manager, clean)
    failures = [v for v in await store.client.keys(keys.vm("*")) if await store.client.hget(v, "clone_error")]
    assert failures, "with 50% injected failures some clone must have failed"


async def test_pending_past_timeout_fails_and_is_replaced(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, ready_delay=3600)
    settings = with_pool_minutes(settings_with([{**POOL, "size": 1}]), "deb", timeout=0.3 / 60)
    manager = manager_for(settings, store, provider)
    await manager.run_once()
    first = await store.members("deb", VMState.PENDING)
    assert len(first) == 1

    async def replaced() -> bool:
        pending = await store.members("deb", VMState.PENDING)
        return bool(pending) and not (pending & first) and not (set(provider.all_vms().get("deb", [])) & first)

    await run_until(manager, replaced)
    (name,) = first
    assert "not ready" in (await store.vm(name))["clone_error"]


async def test_ready_vms_are_recycled_after_ready_ttl(store: Store, inventory_file: Path) -> None:
    provider, clock = dummy(inventory_file), Clock()
    manager = manager_for(settings_with([POOL]), store, provider, clock)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    original = await store.members("deb", VMState.READY)
    clock.advance(60 * 60 + 2)  # past the default ready_ttl of 60 minutes; the replacements are new then

    async def recycled() -> bool:
        ready = await store.members("deb", VMState.READY)
        # all three replacements: they become ready one by one, within a pass of each other
        return len(ready) == 3 and not (ready & original) and not (set(provider.all_vms().get("deb", [])) & original)

    await run_until(manager, recycled)
    for name in original:  # recycled as expired, not as failures
        assert await store.locate(name) in (("deb", VMState.DESTROYED), ("deb", VMState.COMPLETED))
        assert "clone_error" not in await store.vm(name)
    assert len(await store.members("deb", VMState.READY)) == 3


async def test_ready_vm_failing_its_recheck_is_replaced(store: Store, inventory_file: Path) -> None:
    provider, clock = dummy(inventory_file), Clock()
    manager = manager_for(settings_with([{**POOL, "size": 1}]), store, provider, clock)
    await run_until(manager, lambda: _ready_at_least(store, 1))
    (sick,) = await store.members("deb", VMState.READY)
    provider.options.vmready_fail_percent = 100  # type: ignore[attr-defined]
    clock.advance(60 + 2)  # past vm_checktime (1 minute): the next pass checks the ready VM
    await manager.run_once()
    assert sick not in await store.members("deb", VMState.READY)
    provider.options.vmready_fail_percent = 0  # type: ignore[attr-defined]
    await run_until(manager, lambda: _ready_at_least(store, 1))
    await settle(manager)
    await manager.run_once()
    await settle(manager)
    assert sick not in provider.all_vms().get("deb", [])


async def test_running_vm_is_destroyed_when_its_lifetime_runs_out(
    store: Store, inventory_file: Path, redis_port: int
) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL], vm_lifetime=24), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    taken = await store.checkout([["deb"], ["deb"]], now=1_000_000.0)  # checked out long ago
    assert isinstance(taken, list)
    (_, expired), (_, fresh) = taken
    client = redis.Redis(port=redis_port, decode_responses=True)
    client.hset(keys.vm(fresh), "checkout", client.hget(keys.vm(fresh), "checkout").replace("1970", "2999"))
    await manager.run_once()
    await settle(manager)
    assert expired not in provider.all_vms().get("deb", [])
    assert (await store.locate(expired)) == ("deb", VMState.DESTROYED)
    assert fresh in await store.members("deb", VMState.RUNNING)


async def test_returned_vm_is_destroyed(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    taken = await store.checkout([["deb"]], now=1e10)
    assert isinstance(taken, list)
    ((_, name),) = taken
    assert await store.move("deb", name, VMState.RUNNING, VMState.COMPLETED)

    async def destroyed() -> bool:
        return name not in provider.all_vms().get("deb", []) and await store.locate(name) == ("deb", VMState.DESTROYED)

    await run_until(manager, destroyed)


async def test_unknown_vms_in_the_provider_are_destroyed(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([{**POOL, "size": 1}]), store, provider)
    target = manager.reconcilers["deb"].ctx.target
    await provider.create_vm(target, "leaked-vm")
    await manager.run_once()
    await settle(manager)
    assert "leaked-vm" not in provider.all_vms().get("deb", [])
    members = await store.all_members("deb")
    assert "leaked-vm" not in set().union(*members.values())


async def test_lowering_the_size_removes_excess_ready_vms(store: Store, inventory_file: Path, redis_port: int) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    redis.Redis(port=redis_port).hset(keys.CONFIG_POOLSIZE, "deb", "1")

    async def shrunk() -> bool:
        return await ready_count(store) == 1 and len(provider.all_vms().get("deb", [])) == 1

    await run_until(manager, shrunk)
    await settle(manager)  # the excess VM's destroy task finishes recording what it did
    assert await store.counts(["deb"]) == {"deb": {**dict.fromkeys(LIVE_STATES, 0), VMState.READY: 1}}


async def test_template_override_drains_and_rebuilds(store: Store, inventory_file: Path, redis_port: int) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    old = await store.members("deb", VMState.READY)
    redis.Redis(port=redis_port).hset(keys.CONFIG_TEMPLATE, "deb", "templates/deb-v2")

    async def rebuilt() -> bool:
        ready = await store.members("deb", VMState.READY)
        return len(ready) == 3 and not (ready & old) and not (set(provider.all_vms().get("deb", [])) & old)

    await run_until(manager, rebuilt)
    assert (await store.overrides.prepared("deb"))[0] == "templates/deb-v2"


async def test_inventory_failure_skips_the_pass_and_keeps_records(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 3))
    before = await store.all_members("deb")

    async def broken(_pool: object) -> list[str]:
        raise OSError("hypervisor unreachable")

    provider.vms_in_pool = broken  # type: ignore[method-assign]
    assert (await manager.run_once()) == {"deb": False}
    assert await store.all_members("deb") == before


async def test_every_vm_stays_in_exactly_one_state_under_churn(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, createvm_fail_percent=30, destroyvm_fail_percent=20, seed=11)
    manager = manager_for(settings_with([{**POOL, "size": 5}]), store, provider)
    for round_ in range(25):
        await manager.run_once()
        assert_one_state_each(await store.all_members("deb"))
        if round_ % 3 == 0:
            taken = await store.checkout([["deb"]], now=1e10)
            if isinstance(taken, list):
                await store.move("deb", taken[0][1], VMState.RUNNING, VMState.COMPLETED)
        await asyncio.sleep(0.05)
    await settle(manager)
    provider.options.destroyvm_fail_percent = 0  # type: ignore[attr-defined]
    provider.options.createvm_fail_percent = 0  # type: ignore[attr-defined]

    async def consistent() -> bool:
        members = await store.all_members("deb")
        live = members[VMState.READY] | members[VMState.PENDING] | members[VMState.RUNNING]
        return set(provider.all_vms().get("deb", [])) == live and not members[VMState.COMPLETED]

    await run_until(manager, consistent)


async def test_a_dead_managers_clone_is_failed_at_once_a_live_ones_is_left(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file, ready_delay=3600)
    manager = manager_for(settings_with([{**POOL, "size": 0}]), store, provider)
    target = manager.reconcilers["deb"].ctx.target
    for name, owner in (("orphan", "dead-manager"), ("adopted", "live-manager")):
        assert await store.create_pending("deb", name, {"clone": "2999-01-01 00:00:00 +0000", "clone_owner": owner})
        await provider.create_vm(target, name)
    await store.heartbeat("live-manager", "elsewhere:1", 30)
    await manager.run_once()
    members = await store.all_members("deb")
    assert "orphan" not in members[VMState.PENDING]
    assert (await store.vm("orphan"))["clone_error"] == "clone interrupted"
    assert members[VMState.PENDING] == {"adopted"}, "another live manager's clone must be left alone"


async def test_a_vm_missing_from_one_inventory_is_kept_and_from_two_is_gone(store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([{**POOL, "size": 2}]), store, provider)
    await run_until(manager, lambda: _ready_at_least(store, 2))
    taken = await store.checkout([["deb"]], now=1e10)
    assert isinstance(taken, list)
    ((_, name),) = taken
    real_inventory = provider.vms_in_pool

    async def hiccup(pool: object) -> list[str]:
        return [n for n in await real_inventory(pool) if n != name]  # type: ignore[arg-type]

    provider.vms_in_pool = hiccup  # type: ignore[method-assign]
    await manager.run_once()
    assert name in await store.members("deb", VMState.RUNNING), "one short listing must not take the VM"
    provider.vms_in_pool = real_inventory  # type: ignore[method-assign]
    await manager.run_once()
    provider.vms_in_pool = hiccup  # type: ignore[method-assign]
    await manager.run_once()
    assert name in await store.members("deb", VMState.RUNNING), "the count restarts once it is seen again"
    await manager.run_once()
    assert await store.locate(name) in (("deb", VMState.COMPLETED), ("deb", VMState.DESTROYED))


async def test_failed_provider_calls_are_counted_by_the_errors_metric_key(store: Store, inventory_file: Path) -> None:
    from vmpooler.metrics.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()
    provider = dummy(inventory_file, templates=["templates/deb"], createvm_fail_percent=100, destroyvm_fail_percent=100)
    pools = [{**POOL, "size": 1}, {"name": "gone", "template": "templates/gone", "size": 1}]
    manager = Manager(settings_with(pools), store, {"dummy": provider}, call_timeout=10, metrics=metrics)

    def count(cause: str, pool: str) -> float:
        return metrics.registry.get_sample_value("vmpooler_errors_total", {"cause": cause, "pool": pool}) or 0.0

    async def counted() -> bool:
        await settle(manager)
        return all(
            count(c, p) for c, p in (("clone_failed", "deb"), ("permanently_failed", "gone"), ("destroy_failed", "deb"))
        )

    await run_until(manager, counted)
    assert count("clone_failed", "deb") and count("permanently_failed", "gone") and count("destroy_failed", "deb")

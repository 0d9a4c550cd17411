"""The suspended tier (docs/fast-clones.md): dummy provider, a real Redis, the real API over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx

from tests.support.pools import dummy, manager_for, run_until, settings_with, settle
from tests.support.servers import ApiThread
from tests.support.waiting import until
from vmpooler.config import parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store.redis import Store
from vmpooler.validate import problems

POOL = {"name": "deb", "template": "t/deb", "size": 1, "suspended": 2}


async def tier_full(store: Store) -> bool:
    counts = (await store.counts(["deb"]))["deb"]
    return counts[VMState.READY] == 1 and counts[VMState.SUSPENDED] == 2 and counts[VMState.PENDING] == 0


async def in_one_state_each(store: Store) -> dict[VMState, set[str]]:
    members = await store.all_members("deb")
    for (a, left), (b, right) in itertools.combinations(members.items(), 2):
        assert not left & right, f"in {a} and {b}: {left & right}"
    return members


async def event_types(store: Store, name: str) -> list[str]:
    return [e.type for e in await store.eventlog.after("0", count=10_000) if e.vm == name]


async def test_the_tier_is_kept_at_its_size_and_survives_a_manager_restart(store: Store, inventory_file: Path) -> None:
    settings = settings_with([POOL])
    provider = dummy(inventory_file, suspendvm_max_time=0.05)
    manager = manager_for(settings, store, provider)
    await run_until(manager, lambda: tier_full(store))
    members = await in_one_state_each(store)
    suspended = members[VMState.SUSPENDED]
    for name in suspended:
        assert await event_types(store, name) == ["vm.cloned", "vm.suspended"]
        info = await provider.get_vm(settings.pools[0].target(), name)
        assert info is not None and info.extra["status"] == "suspended"
        assert not await provider.vm_ready(settings.pools[0].target(), name)
    await settle(manager)

    # a new manager (a restart) over the same Redis and inventory keeps the same suspended VMs
    restarted = manager_for(settings, store, dummy(inventory_file))
    for _ in range(5):
        await restarted.run_once()
        await asyncio.sleep(0.05)
    members = await in_one_state_each(store)
    assert members[VMState.SUSPENDED] == suspended and len(members[VMState.READY]) == 1
    assert not members[VMState.PENDING] and not members[VMState.COMPLETED]

    # a manager killed mid-resume: the provider runs the VM, Redis still has it suspended
    first = min(suspended)
    await provider.resume_vm(settings.pools[0].target(), first)
    # a checkout takes the ready VM: the suspended VM first in line is resumed (again: that succeeds), and a
    # clone refills the tier
    (ready,) = members[VMState.READY]
    assert await store.move("deb", ready, VMState.READY, VMState.RUNNING)
    await run_until(restarted, lambda: tier_full(store))
    members = await in_one_state_each(store)
    assert members[VMState.READY] == {first}
    assert await event_types(store, first) == ["vm.cloned", "vm.suspended", "vm.resumed"]
    assert len(members[VMState.SUSPENDED] - suspended) == 1
    await settle(restarted)


async def test_a_waiting_checkout_on_an_empty_pool_is_served_by_a_resumed_vm(
    store: Store, inventory_file: Path, redis_port: int
) -> None:
    clone_seconds = 2.5  # a clone boots this long after it is made; a resume takes at most 0.2 s
    settings = settings_with([{**POOL, "size": 0, "suspended": 1}])
    manager = Manager(
        settings,
        store,
        {"dummy": dummy(inventory_file, ready_delay=clone_seconds, resumevm_max_time=0.2)},
        call_timeout=10,
        ready_poll_interval=0.02,
        history_wait=lambda _now: 3600.0,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop, grace=0.5))
    try:

        async def one_suspended() -> bool:
            return len(await store.members("deb", VMState.SUSPENDED)) == 1

        await until(one_suspended, "the tier filled", timeout=20)
        (suspended,) = await store.members("deb", VMState.SUSPENDED)
        with ApiThread(settings, redis_port) as api:
            status = await asyncio.to_thread(httpx.get, f"{api.url}/api/v3/status", timeout=10)
            assert status.json()["pools"]["deb"]["suspended"] == 1 and status.json()["pools"]["deb"]["ready"] == 0
            # size 0: nothing is ready, so the checkout waits; its demand has the manager resume the tier
            started = time.monotonic()
            reply = await asyncio.to_thread(
                httpx.post, f"{api.url}/api/v3/vm/deb", headers={"Prefer": "wait=20"}, timeout=30
            )
            waited = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        assert reply.json()["deb"]["hostname"].split(".")[0] == suspended
        assert waited < clone_seconds, f"served in {waited:.2f}s: not by a resume"
        assert "vm.resumed" in await event_types(store, suspended)
        await in_one_state_each(store)
    finally:
        stop.set()
        await running


def test_a_suspended_tier_on_a_provider_that_cannot_suspend_is_a_config_problem() -> None:
    raw = {
        "providers": {
            "vsphere": {"provider_class": "vsphere", "server": "vc.example", "username": "u", "password": "p"}
        },
        "pools": [{"name": "win", "template": "t/win", "size": 1, "provider": "vsphere", "suspended": 2}],
    }
    settings, _ = parse_settings(raw, env={})
    found = [p for p in problems(settings) if "suspended" in p]
    assert found and found[0].startswith("pools[0].suspended:") and "cannot suspend" in found[0]
    fine, _ = parse_settings({"pools": [{"name": "deb", "template": "t/deb", "size": 1, "suspended": 2}]}, env={})
    assert not [p for p in problems(fine) if "suspended" in p]


async def test_a_vm_whose_resume_fails_is_failed_and_replaced_by_a_clone(store: Store, inventory_file: Path) -> None:
    settings = settings_with([{**POOL, "suspended": 1}])
    filled = manager_for(settings, store, dummy(inventory_file))

    async def one_ready_one_suspended() -> bool:
        counts = (await store.counts(["deb"]))["deb"]
        return counts[VMState.READY] == 1 and counts[VMState.SUSPENDED] == 1 and counts[VMState.PENDING] == 0

    await run_until(filled, one_ready_one_suspended)
    await settle(filled)
    (suspended,) = await store.members("deb", VMState.SUSPENDED)
    (ready,) = await store.members("deb", VMState.READY)
    assert await store.move("deb", ready, VMState.READY, VMState.RUNNING)
    broken = manager_for(settings, store, dummy(inventory_file, resumevm_fail_percent=100))
    await run_until(broken, one_ready_one_suspended)
    await in_one_state_each(store)
    assert suspended not in await store.members("deb", VMState.READY) | await store.members("deb", VMState.SUSPENDED)
    types = await event_types(store, suspended)
    assert types[:3] == ["vm.cloned", "vm.suspended", "vm.failed"] and "vm.resumed" not in types
    await settle(broken)

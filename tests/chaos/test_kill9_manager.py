"""kill -9 the manager again and again, mid-clone, mid-boot, mid-destroy, while an API process lends VMs:
afterwards no VM is in two states, the provider holds no VM Redis does not know, and no lent VM is lost."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import redis

from tests.chaos import scenario
from tests.chaos.census import Census, take_census
from tests.chaos.figures import Figures
from tests.chaos.traffic import Traffic, unexpected_errors
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.states import VMState
from vmpooler.store import keys

pytestmark = pytest.mark.slow

SIZES = {"alpha": 4, "beta": 3}
#: after the last kill, the clean manager must settle the pools within this many seconds
SETTLE_SECONDS = 60
#: and they must then stay settled this long: more than one pass (check_loop_delay_max is 1 s, and a
#: VM must be missing from two inventories in a row before it counts as gone)
QUIET_SECONDS = 3.0


def manager_registered(redis_port: int, pid: int) -> bool:
    """Has the manager with this pid sent its first heartbeat (it has registered and taken its pools)?"""
    client = redis.Redis(port=redis_port, decode_responses=True)
    try:
        ids = [str(i) for i in client.zrange(keys.MANAGERS, 0, -1)]
        found = client.mget([keys.manager(i) for i in ids]) if ids else []
    finally:
        client.close()
    return any(str(d).endswith(f":{pid}") for d in found if d is not None)


def adopted_leaks(redis_port: int) -> int:
    """VMs the manager found in the provider with no Redis record: a discovered VM's record holds only
    what its destroy wrote, never the ``clone`` stamp every recorded clone gets."""
    client = redis.Redis(port=redis_port, decode_responses=True)
    try:
        return sum(1 for key in client.scan_iter(f"{keys.VM_PREFIX}*") if not client.hexists(key, "clone"))
    finally:
        client.close()


def settled(census: Census) -> bool:
    """Every pool full, nothing cloning, nothing waiting to be destroyed."""
    busy = (VMState.PENDING, VMState.COMPLETED, VMState.FAILED, VMState.DISCOVERED)
    return all(
        census.counts(pool)[VMState.READY] == size and not any(census.counts(pool)[s] for s in busy)
        for pool, size in SIZES.items()
    )


@pytest.mark.timeout(300)
def test_kill_9_the_manager_mid_work_leaks_and_loses_nothing(
    chaos_redis_port: int, tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(scenario.seed())
    rounds = int(scenario.knob("CHAOS_ROUNDS", 12))
    inventory = tmp_path / "inventory.json"
    config = write_config(tmp_path / "vmpooler.yaml", scenario.config(chaos_redis_port, inventory, SIZES))
    logs = tmp_path / "logs"
    api = VmpoolerProcess("api", config, logs).start()
    manager = VmpoolerProcess("manager", config, logs)
    #: what each kill interrupted: clones or boots (pending VMs), destroys (completed or failed VMs)
    interrupted = {"clone": 0, "destroy": 0}
    try:
        with Traffic([api.url], list(SIZES), workers=2, keep_every=3, hold=0.3, pause=0.2) as traffic:
            for _ in range(rounds):
                manager.start()
                wait_until(lambda: manager_registered(chaos_redis_port, manager.pid), 30, what="manager start")
                time.sleep(rng.uniform(0.1, 2.0))
                before = take_census(chaos_redis_port, list(SIZES))
                manager.kill()
                interrupted["clone"] += bool(before.members(VMState.PENDING))
                interrupted["destroy"] += bool(before.members(VMState.COMPLETED) | before.members(VMState.FAILED))
        manager.start()

        def quiet() -> bool:
            return settled(take_census(chaos_redis_port, list(SIZES), inventory))

        try:
            wait_until(quiet, SETTLE_SECONDS, pause=0.25, what="pools settled after the last kill")
        except AssertionError:
            census = take_census(chaos_redis_port, list(SIZES), inventory)
            raise AssertionError(f"pools never settled: {census.placements}; provider {census.provider}") from None
        time.sleep(QUIET_SECONDS)
        census = take_census(chaos_redis_port, list(SIZES), inventory)
        assert settled(census), f"pools unsettled again: {[census.counts(p) for p in SIZES]}"
    finally:
        manager.stop()
        api.stop()

    kept = {scenario.short(h) for h in traffic.kept}
    returned = {scenario.short(h) for h in traffic.returned}
    lost = kept - census.members(VMState.RUNNING)
    reissued = returned & (census.members(VMState.READY) | census.members(VMState.RUNNING))
    figures.record("kill9.rounds", rounds)
    figures.record("kill9.kills_mid_clone_or_boot", interrupted["clone"])
    figures.record("kill9.kills_mid_destroy", interrupted["destroy"])
    figures.record("kill9.checkouts", len(traffic.checkouts()))
    figures.record("kill9.vms_in_two_states", len(census.in_several_states()))
    figures.record("kill9.leaked", len(census.leaked()))
    figures.record("kill9.lost", len(lost))
    figures.record("kill9.adopted_leaks", adopted_leaks(chaos_redis_port))
    figures.record("kill9.double_handouts", len(traffic.doubles()))
    assert rounds > 0 and traffic.checkouts(), "no VM was ever checked out: the test proved nothing"
    assert census.in_several_states() == {}
    assert census.leaked() == set(), f"the provider holds VMs Redis does not know: {census.provider}"
    assert census.phantoms() == set(), "Redis offers VMs the provider no longer has"
    assert lost == set(), f"checked-out VMs whose record disappeared: {sorted(lost)}"
    assert reissued == set() and traffic.doubles() == {}
    assert adopted_leaks(chaos_redis_port) == 0, "a VM reached the provider without a pending record first"
    assert unexpected_errors(traffic.replies) == [], "the API failed while the manager was being killed"

"""64 clients check VMs out of two API processes while two managers fill the pools, and one manager is
killed with -9 and restarted: no VM is handed out twice, no request fails, no pool is ever over-filled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos import scenario
from tests.chaos.census import FillSampler, take_census
from tests.chaos.figures import Figures
from tests.chaos.traffic import Traffic, unexpected_errors
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.states import VMState

pytestmark = pytest.mark.slow

SIZES = {"alpha": 10, "beta": 10}
TASK_LIMIT = 4
WORKERS = 64


@pytest.mark.timeout(240)
def test_no_vm_is_handed_out_twice_under_concurrent_checkouts_and_a_manager_kill(
    chaos_redis_port: int, tmp_path: Path, figures: Figures
) -> None:
    seconds = scenario.knob("CHAOS_SECONDS", 20)
    inventory = tmp_path / "inventory.json"
    config = write_config(
        tmp_path / "vmpooler.yaml", scenario.config(chaos_redis_port, inventory, SIZES, task_limit=TASK_LIMIT)
    )
    logs = tmp_path / "logs"
    managers = [VmpoolerProcess("manager", config, logs, name=f"manager-{n}") for n in (1, 2)]
    apis = [VmpoolerProcess("api", config, logs) for _ in (1, 2)]
    try:
        for process in [*managers, *apis]:
            process.start()

        def full() -> bool:
            census = take_census(chaos_redis_port, list(SIZES))
            return all(census.counts(pool)[VMState.READY] == size for pool, size in SIZES.items())

        wait_until(full, 60, pause=0.25, what="both pools full")
        with (
            FillSampler(chaos_redis_port, SIZES) as sampler,
            Traffic([api.url for api in apis], list(SIZES), workers=WORKERS, hold=0.1, pause=0.1) as traffic,
        ):
            time.sleep(seconds / 2)
            managers[0].kill()
            managers[0].start()
            time.sleep(seconds / 2)
        for manager in managers:
            assert manager.stop() == 0
        # nothing moves now: the census cannot race a change
        census = take_census(chaos_redis_port, list(SIZES), inventory)
    finally:
        for process in [*managers, *apis]:
            process.stop()

    over = max(sampler.peak_over.values())
    figures.record("concurrent.workers", WORKERS)
    figures.record("concurrent.seconds", seconds)
    figures.record("concurrent.requests", len(traffic.replies))
    figures.record("concurrent.checkouts", len(traffic.checkouts()))
    figures.record("concurrent.double_handouts", len(traffic.doubles()))
    figures.record("concurrent.server_errors", len(unexpected_errors(traffic.replies)))
    figures.record("concurrent.fill_samples", sampler.samples)
    figures.record("concurrent.max_overfill", over)
    assert len(traffic.checkouts()) > 2 * sum(SIZES.values()), "too few checkouts to prove anything"
    assert traffic.doubles() == {}, f"handed out twice: {traffic.doubles()}"
    assert unexpected_errors(traffic.replies) == [], unexpected_errors(traffic.replies)[:5]
    assert sampler.samples > seconds * 2, "the fill level was hardly sampled"
    assert over <= TASK_LIMIT, f"a pool held {over} more ready + pending VMs than its size"
    assert census.in_several_states() == {}
    assert census.leaked() == set()

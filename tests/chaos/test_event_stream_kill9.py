"""kill -9 the manager and an API process again and again under load: afterwards every change Redis shows has
its event and every event its change (counted per VM: created, checked out, returned, destroyed, and the state
the events add up to is the state the VM is in)."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import redis

from tests.chaos import scenario
from tests.chaos.census import take_census
from tests.chaos.figures import Figures
from tests.chaos.test_kill9_manager import manager_registered, settled
from tests.chaos.traffic import Traffic
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.states import VMState
from vmpooler.store import keys

SIZES = {"alpha": 4, "beta": 3}
SETTLE_SECONDS = 60

#: the state each event leaves its VM in
AFTER = {
    "vm.cloned": VMState.PENDING,
    "vm.discovered": VMState.DISCOVERED,
    "vm.ready": VMState.READY,
    "vm.checked_out": VMState.RUNNING,
    "vm.returned": VMState.COMPLETED,
    "vm.retired": VMState.COMPLETED,
    "vm.failed": VMState.FAILED,
    "vm.quarantined": VMState.QUARANTINE,
    "vm.destroyed": VMState.DESTROYED,
}


def read_all(redis_port: int) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Every VM record, and every VM's event types in stream order."""
    client = redis.Redis(port=redis_port, decode_responses=True)
    try:
        records = {
            key.removeprefix(keys.VM_PREFIX): client.hgetall(key) for key in client.scan_iter(f"{keys.VM_PREFIX}*")
        }
        events: dict[str, list[str]] = defaultdict(list)
        for _, fields in client.xrange(keys.EVENT_STREAM, "-", "+"):
            if fields.get("vm") and fields["type"] in AFTER:
                events[fields["vm"]].append(fields["type"])
    finally:
        client.close()
    return records, dict(events)


@pytest.mark.timeout(300)
def test_kill_9_of_manager_and_api_loses_no_event_and_invents_none(
    chaos_redis_port: int, tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(scenario.seed())
    rounds = int(scenario.knob("CHAOS_EVENT_ROUNDS", 3))
    inventory = tmp_path / "inventory.json"
    config = write_config(tmp_path / "vmpooler.yaml", scenario.config(chaos_redis_port, inventory, SIZES))
    logs = tmp_path / "logs"
    apis = [VmpoolerProcess("api", config, logs).start() for _ in (1, 2)]
    manager = VmpoolerProcess("manager", config, logs)
    try:
        with Traffic([api.url for api in apis], list(SIZES), workers=3, hold=0.2, pause=0.2, timeout=5):
            for _ in range(rounds):
                manager.start()
                wait_until(lambda: manager_registered(chaos_redis_port, manager.pid), 30, what="manager start")
                time.sleep(rng.uniform(0.3, 1.5))
                apis[0].kill()  # mid-request, most likely: the traffic never pauses
                manager.kill()
                apis[0].start(wait=False)
        manager.start()
        wait_until(
            lambda: settled(take_census(chaos_redis_port, list(SIZES), inventory)),
            SETTLE_SECONDS,
            pause=0.25,
            what="pools settled after the last kill",
        )
    finally:
        manager.stop()
        for api in apis:
            api.stop()

    records, events = read_all(chaos_redis_port)
    census = take_census(chaos_redis_port, list(SIZES))
    state_now = {name: where[0][1] for name, where in census.placements.items()}
    with_field = {field: {n for n, r in records.items() if field in r} for field in ("clone", "checkout", "destroy")}
    count = Counter(t for types in events.values() for t in types)
    figures.record("events.kill_rounds", rounds)
    figures.record("events.vms_created", len(with_field["clone"]))
    figures.record("events.vms_checked_out", len(with_field["checkout"]))
    figures.record("events.vms_destroyed", len(with_field["destroy"]))
    figures.record("events.in_stream", sum(count.values()))
    assert with_field["checkout"], "no VM was ever checked out: the test proved nothing"
    # each change counted from Redis has its one event, and no event names a change Redis does not show
    assert {n for n, t in events.items() if "vm.cloned" in t} == with_field["clone"]
    assert {n for n, t in events.items() if "vm.checked_out" in t} == with_field["checkout"]
    assert {n for n, t in events.items() if "vm.destroyed" in t} == with_field["destroy"]
    returned = {n for n in with_field["checkout"] if state_now.get(n) is not VMState.RUNNING}
    assert {n for n, t in events.items() if "vm.returned" in t} == returned
    repeated = {n: t for n, t in events.items() if max(Counter(t).values()) > 1}
    assert repeated == {}, f"an event written twice: {json.dumps(repeated)[:500]}"
    # and the events add up to where each VM is now
    for name, types in events.items():
        now = state_now.get(name) or (VMState.DESTROYED if "destroy" in records.get(name, {}) else None)
        assert AFTER[types[-1]] is now, f"{name}: events {types} but the VM is {now}"
    assert set(state_now) <= set(events), "a VM in a state set without any event"

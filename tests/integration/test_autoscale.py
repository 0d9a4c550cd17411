"""An autoscaled pool against a real Redis and the dummy provider: the manager follows the target the
sizing rule gives from a stored profile, keeps what it learns in Redis, and falls to min without demand."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.support.clock import Clock
from tests.support.pools import dummy, manager_for, run_until, settings_with
from tests.support.servers import ApiThread
from vmpooler.config.load import parse_settings
from vmpooler.errors import ConfigError
from vmpooler.sizing import Profile, Refill, SlotFigures, slot_of
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.autoscale import AutoscaleStore
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "templates/deb", "size": 0, "autoscale": {"min": 1, "max": 6}}


async def ready(store: Store) -> int:
    return (await store.counts(["deb"]))["deb"][VMState.READY]


async def test_manager_follows_the_autoscale_target(
    store: Store, inventory_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    # a profile kept by an earlier manager: bursts of 5 at this hour, refills of a minute
    learned = Profile(slots={slot_of(clock()): SlotFigures(0.5, 5.0, 3)}, refill=Refill(60.0, 0.0, 500))
    await AutoscaleStore(store.client).save("deb", learned)
    manager = manager_for(settings_with([POOL]), store, dummy(inventory_file), clock=clock)
    caplog.set_level(logging.INFO, "vmpooler.manager")

    async def five_ready() -> bool:
        return await ready(store) == 5

    await run_until(manager, five_ready)
    assert "pool deb: autoscale target none -> 5" in caplog.text
    stored = await AutoscaleStore(store.client).load("deb")
    assert stored.refill.samples > 500, "the clones' refill times are learned and kept in Redis"
    assert await store.client.exists(keys.autoscale_profile("deb"))

    clock.advance(12 * 3600)  # an hour of the week nobody has checked out at: back to min

    async def only_min_ready() -> bool:
        return await ready(store) == 1

    await run_until(manager, only_min_ready)
    assert "autoscale target 5 -> 1" in caplog.text
    resized = [e for e in await store.eventlog.after() if e.type == "pool.resized"]
    sizes = [(e.pool, e.data["size"], e.data["source"]) for e in resized]
    assert sizes[0] == ("deb", 5, "autoscale") and sizes[-1] == ("deb", 1, "autoscale"), sizes
    assert "lead" in resized[0].data["reason"]


def test_a_bad_autoscale_section_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"pools\[0\]\.autoscale\.min: must not exceed autoscale\.max"):
        parse_settings({"pools": [{**POOL, "autoscale": {"min": 5, "max": 2}}]}, env={})


async def test_status_and_prometheus_show_waits_and_the_slo(
    redis_port: int, store: Store, inventory_file: Path
) -> None:
    clock = Clock()
    learned = Profile(slots={slot_of(clock()): SlotFigures(0.1, 2.0, 3)}, refill=Refill(60.0, 0.0, 500))
    await AutoscaleStore(store.client).save("deb", learned)
    settings = settings_with([{**POOL, "autoscale": {"min": 0, "max": 4, "target_wait_p95_s": 2}}])
    manager = manager_for(settings, store, dummy(inventory_file), clock=clock)

    async def two_ready() -> bool:
        return await ready(store) == 2

    await run_until(manager, two_ready)
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v3/vm/deb+deb").status_code == 200
        entry = client.get("/api/v3/status").json()["pools"]["deb"]["autoscale"]
        scraped = client.get("/prometheus").text
    assert entry["target"] == 2 and entry["min"] == 0 and entry["max"] == 4 and entry["target_wait_p95_s"] == 2
    assert "lead" in entry["reason"]
    assert (entry["checkouts_24h"], entry["slo_attainment_24h"], entry["burn_rate_24h"]) == (2, 1.0, 0.0)
    assert 'vmpooler_checkout_wait_seconds_bucket{le="0.0",pool="deb"} 2.0' in scraped


async def test_waiting_checkouts_raise_the_target(store: Store, inventory_file: Path) -> None:
    clock = Clock()
    settings = settings_with([{**POOL, "autoscale": {"min": 0, "max": 6}}])
    manager = manager_for(settings, store, dummy(inventory_file), clock=clock)
    await manager.run_once()
    autoscaler = manager.reconcilers["deb"].autoscaler
    assert autoscaler is not None and autoscaler.decision is not None and autoscaler.decision.target == 0
    for seq in range(3):  # three requests waiting in the pool's fair queue
        await store.client.zadd(keys.wait_queue("deb"), {f"request-{seq}": seq})
    await manager.run_once()
    assert autoscaler.decision is not None and autoscaler.decision.target == 3
    assert "queue 3" in autoscaler.decision.reason

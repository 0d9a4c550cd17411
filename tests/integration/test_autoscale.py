"""An autoscaled pool against a real Redis and the dummy provider: the manager follows the target the
sizing rule gives from a stored profile, keeps what it learns in Redis, and falls to min without demand."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.clock import Clock
from tests.support.pools import dummy, manager_for, run_until, settings_with
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


def test_a_bad_autoscale_section_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"pools\[0\]\.autoscale\.min: must not exceed autoscale\.max"):
        parse_settings({"pools": [{**POOL, "autoscale": {"min": 5, "max": 2}}]}, env={})

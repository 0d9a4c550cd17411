"""Failover: a degraded or empty pool's checkouts are served by its fallback pools, and come back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.test_ec2 import UNKNOWN_AMI
from tests.support.clock import Clock
from tests.support.fixtures.moto import MotoServer
from tests.support.pools import dummy, run_until, settings_with, settle
from tests.support.servers import ApiThread
from vmpooler.api.services.vms import VMService
from vmpooler.errors import ServiceUnavailable
from vmpooler.manager.breaker import BreakerState
from vmpooler.manager.loop import Manager
from vmpooler.providers.ec2 import EC2Options, EC2Provider
from vmpooler.states import VMState
from vmpooler.store.redis import Store


async def fill(store: Store, pool: str, count: int) -> None:
    for i in range(count):
        name = f"{pool}-{i}"
        assert await store.create_pending(pool, name, {"clone": "x"})
        assert await store.mark_ready(pool, name, time.time(), 1.0)


async def spot_clones(store: Store) -> int:
    """Every clone the pool ``spot`` ever started (each leaves a record), whatever became of it."""
    names = await store.client.keys("vmpooler__vm__*")
    return sum([await store.client.hget(name, "pool") == "spot" for name in names])


async def test_a_pool_whose_platform_fails_is_served_by_its_fallback_until_it_recovers(
    store: Store, redis_port: int
) -> None:
    settings = settings_with(
        [
            {"name": "spot", "template": "t/a", "size": 1, "provider": "broken", "fallback": ["ondemand"]},
            {"name": "ondemand", "template": "t/a", "size": 2},
        ],
        circuit_breaker_failure_threshold=2,
        circuit_breaker_timeout=30,
    )
    broken, healthy = dummy(None, createvm_fail_percent=100), dummy(None)
    clock = Clock()
    manager = Manager(
        settings, store, {"broken": broken, "dummy": healthy}, clock=clock, call_timeout=10, ready_poll_interval=0.02
    )
    breaker = manager.reconcilers["spot"].ctx.breaker

    async def spot_down_fallback_up() -> bool:
        await settle(manager)
        counts = await store.counts(["ondemand"])
        return breaker.state is BreakerState.OPEN and counts["ondemand"][VMState.READY] == 2

    await run_until(manager, spot_down_fallback_up)
    with ApiThread(settings, redis_port) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            reply = await client.post("/api/v3/vm", json={"spot": 1})
            assert reply.status_code == 200, reply.text
            body: dict[str, Any] = reply.json()
            assert body["spot"]["fallback"] == ["ondemand"]
            assert body["spot"]["hostname"].split(".")[0] in await store.members("ondemand", VMState.RUNNING)

            broken.options.createvm_fail_percent = 0  # the platform recovers
            clock.advance(31)  # the backoff ends: the next pass sends one probe clone
            clones_before = await spot_clones(store)

            async def spot_back() -> bool:
                await settle(manager)
                counts = await store.counts(["spot"])
                return breaker.state is BreakerState.CLOSED and counts["spot"][VMState.READY] == 1

            await run_until(manager, spot_back)
            # traffic is back after the first probe: it made the one VM the pool needs
            assert await spot_clones(store) - clones_before == 1
            assert breaker.failures == 0
            reply = await client.post("/api/v3/vm", json={"spot": 1})
            assert reply.status_code == 200 and "fallback" not in reply.json()["spot"], reply.text


async def test_an_empty_pool_waits_its_budget_then_uses_the_fallback(store: Store) -> None:
    settings = settings_with(
        [
            {"name": "fast", "template": "t", "size": 0, "fallback": ["slow"], "fallback_after_s": 0.3},
            {"name": "now", "template": "t", "size": 0, "fallback": ["slow"]},
            {"name": "slow", "template": "t", "size": 0},
            {"name": "alone", "template": "t", "size": 0},
        ]
    )
    service = VMService(settings, store)
    await fill(store, "slow", 2)
    started = time.perf_counter()
    (taken,) = await service.checkout({"fast": 1})
    assert time.perf_counter() - started >= 0.3  # it waited for the pool's own VM first
    assert (taken.pool, taken.fallback) == ("slow", True)
    started = time.perf_counter()
    (taken,) = await service.checkout({"now": 1})
    assert time.perf_counter() - started < 0.3 and taken.fallback  # fallback_after_s 0: at once
    await fill(store, "now", 1)
    (taken,) = await service.checkout({"now": 1})
    assert (taken.pool, taken.fallback) == ("now", False)  # its own VMs come first
    with pytest.raises(ServiceUnavailable):
        await service.checkout({"alone": 1})


async def test_an_ec2_pool_with_a_broken_image_fails_over_to_its_on_demand_pool(
    moto_server: MotoServer, store: Store
) -> None:
    settings = settings_with(
        [
            {"name": "spot", "template": UNKNOWN_AMI, "size": 1, "provider": "ec2", "fallback": ["ondemand"]},
            {"name": "ondemand", "template": moto_server.default_ami, "size": 1, "provider": "ec2"},
        ]
    )
    provider = EC2Provider("ec2", EC2Options.model_validate(moto_server.provider_options()))
    manager = Manager(settings, store, {"ec2": provider}, call_timeout=10, ready_poll_interval=0.02)

    async def spot_degraded_ondemand_ready() -> bool:
        await settle(manager)
        ready = (await store.counts(["ondemand"]))["ondemand"][VMState.READY]
        return "spot" in await store.health.degraded() and ready == 1

    await run_until(manager, spot_degraded_ondemand_ready)
    (taken,) = await VMService(settings, store).checkout({"spot": 1})
    assert (taken.requested, taken.pool, taken.fallback) == ("spot", "ondemand", True)
    await provider.close()

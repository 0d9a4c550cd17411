"""A provider that hangs and one that fails half its clones, beside a healthy one: the healthy pool fills
and serves, every call to the hanging provider is cut off at its timeout, the failing pool's circuit
breaker opens and /status shows it degraded, and no VM leaks.

The manager runs in this process: the provider call timeout is a ``Manager(call_timeout=...)`` argument,
and the clone timeout (the pool's ``timeout``) is whole minutes in the configuration, so both are set
here to seconds. Redis, the API (uvicorn on a socket) and the providers' shared inventory are real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos import scenario
from tests.chaos.census import take_census
from tests.chaos.figures import Figures
from tests.support.pools import with_pool_minutes
from tests.support.servers import ApiThread, make_store
from vmpooler.config import Settings, parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.states import VMState
from vmpooler.store.redis import Store

pytestmark = pytest.mark.slow

SIZES = {"healthy": 4, "hanging": 2, "failing": 4}
#: seconds a provider call (list, ready check, destroy) may take
CALL_TIMEOUT = 1.0
#: seconds a clone may take (the pools' ``timeout``)
CLONE_TIMEOUT = 2.0
#: how late past its timeout a cut-off call may be noticed (a busy 2-core machine)
SLACK = 1.5
BREAKER_THRESHOLD = 3


def fault_settings(inventory: Path) -> Settings:
    shared: dict[str, Any] = {"provider_class": "dummy", "filename": str(inventory), "ready_delay": 0.3}
    raw: dict[str, Any] = {
        "providers": {
            "healthy": {**shared, "createvm_max_time": 0.3, "destroyvm_max_time": 0.2},
            # every clone and every destroy outlasts its timeout
            "hanging": {**shared, "createvm_max_time": 3600, "destroyvm_max_time": 3600, "seed": scenario.seed()},
            "failing": {**shared, "createvm_fail_percent": 50, "seed": scenario.seed()},
        },
        "config": {
            "check_loop_delay_min": 0.2,
            "check_loop_delay_max": 1,
            "task_limit": 6,
            "circuit_breaker_failure_threshold": BREAKER_THRESHOLD,
            "circuit_breaker_timeout": 5,
        },
        "pools": [{"name": name, "template": "t", "size": size, "provider": name} for name, size in SIZES.items()],
    }
    settings, _ = parse_settings(raw, env={})
    return settings


async def watch_pending(store: Store, pool: str, stop: asyncio.Event) -> float:
    """The longest any VM of ``pool`` was seen pending, sampled every 0.1 s."""
    first_seen: dict[str, float] = {}
    longest = 0.0
    while not stop.is_set():
        now = time.monotonic()
        pending = await store.members(pool, VMState.PENDING)
        for name in pending:
            first_seen.setdefault(name, now)
        for name in list(first_seen):
            longest = max(longest, now - first_seen[name])
            if name not in pending:
                del first_seen[name]
        await asyncio.sleep(0.1)
    return longest


@pytest.mark.timeout(120)
async def test_hanging_and_failing_providers_do_not_hold_up_a_healthy_pool(
    chaos_redis_port: int, tmp_path: Path, figures: Figures
) -> None:
    inventory = tmp_path / "inventory.json"
    settings = fault_settings(inventory)
    store = make_store(chaos_redis_port)
    providers = registry.build_all(settings.pools, settings.providers, settings.config)
    settings = with_pool_minutes(settings, "hanging", timeout=CLONE_TIMEOUT / 60)
    manager = Manager(settings, store, providers, call_timeout=CALL_TIMEOUT, ready_poll_interval=0.1)
    stop, watching = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(manager.run(stop, grace=2))
    watcher = asyncio.create_task(watch_pending(store, "hanging", watching))
    checkouts = 0
    #: pool -> (seconds after the start, problem) when /status first showed it degraded
    degraded: dict[str, tuple[float, str]] = {}
    try:
        with ApiThread(settings, chaos_redis_port) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
                began = time.monotonic()
                while time.monotonic() < began + 40:
                    for pool in ("healthy", "failing"):  # a failing pool refills, so it keeps cloning
                        reply = await client.post(f"/api/v3/vm/{pool}")
                        assert reply.status_code in (200, 503), reply.text
                        if reply.status_code == 200:
                            checkouts += 1 if pool == "healthy" else 0
                            host = reply.json()[pool]["hostname"]
                            assert (await client.delete(f"/api/v3/vm/{host}")).status_code == 200
                    status = (await client.get("/api/v3/status")).json()
                    for name, level in status["pools"].items():
                        if "degraded" in level and name not in degraded:
                            degraded[name] = (time.monotonic() - began, level["degraded"]["problem"])
                    if checkouts >= 8 and {"failing", "hanging"} <= degraded.keys():
                        break
                    await asyncio.sleep(0.2)
        watching.set()
        longest_pending = await watcher
        stop.set()
        await asyncio.wait_for(running, 30)
        # the manager has stopped: nothing moves, so the census cannot race a change
        census = await asyncio.to_thread(take_census, chaos_redis_port, list(SIZES), inventory)
        hung = await store.vms(sorted(census.members(VMState.FAILED, "hanging")))
    finally:
        watching.set()
        stop.set()
        await asyncio.wait_for(running, 30)
        watcher.cancel()
        await store.close()

    figures.record("faults.healthy_checkouts", checkouts)
    figures.record("faults.failing_degraded_after_seconds", degraded.get("failing", (-1.0, ""))[0])
    figures.record("faults.hanging_longest_pending_seconds", longest_pending)
    figures.record("faults.leaked", len(census.leaked()))
    assert checkouts >= 8, "the healthy pool did not keep serving"
    assert "failing" in degraded and "hanging" in degraded, f"/status showed degraded only {sorted(degraded)}"
    assert "healthy" not in degraded
    assert "injected fault" in degraded["failing"][1] and "no answer within" in degraded["hanging"][1], degraded
    assert longest_pending <= CLONE_TIMEOUT + SLACK, f"a hanging clone stayed pending {longest_pending:.1f}s"
    assert hung and all("no answer within" in r.get("clone_error", "") for r in hung), hung
    assert census.leaked() == set()
    assert census.in_several_states() == {}

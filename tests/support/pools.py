"""Builds a manager over the real store and a dummy provider, and runs passes until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support.waiting import until
from vmpooler.config import Settings, parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.providers.dummy import DummyOptions, DummyProvider
from vmpooler.states import VMState
from vmpooler.store.redis import Store


def settings_with(pools: list[dict[str, Any]], **config: Any) -> Settings:
    raw: dict[str, Any] = {"pools": pools, "config": {"check_loop_delay_min": 0.05, **config}}
    settings, _ = parse_settings(raw, env={})
    return settings


def dummy(inventory: Path | None, **options: Any) -> DummyProvider:
    defaults: dict[str, Any] = {"ready_delay": 0.05, "seed": 7}
    return DummyProvider(
        "dummy", DummyOptions(filename=str(inventory) if inventory else None, **{**defaults, **options})
    )


def with_pool_minutes(settings: Settings, pool: str, **minutes: float) -> Settings:
    """``settings`` with ``pool``'s minute knobs (``timeout``, ``ready_ttl``) set to fractions of a minute.

    The config takes whole minutes (validation refuses less) and a clone's timeout runs on the monotonic
    clock, not the injected one, so a test that must see it lapse sets seconds here (``model_copy`` does not
    validate, on purpose)."""
    pools = [p.model_copy(update=minutes) if p.name == pool else p for p in settings.pools]
    assert any(p.name == pool for p in settings.pools), f"no pool {pool!r}"
    return settings.model_copy(update={"pools": pools})


def manager_for(
    settings: Settings, store: Store, provider: DummyProvider, clock: Callable[[], float] = time.time
) -> Manager:
    return Manager(settings, store, {"dummy": provider}, clock=clock, call_timeout=10, ready_poll_interval=0.02)


async def run_until(
    manager: Manager, done: Callable[[], Awaitable[bool]], timeout: float = 20.0, pause: float = 0.05
) -> int:
    """Run passes until ``done()``; returns the number of passes. Fails the test on timeout."""

    async def one_pass() -> bool:
        await manager.run_once()
        return await done()

    what = f"{getattr(done, '__name__', 'the condition')} after manager passes"
    return (await until(one_pass, what, timeout=timeout, pause=pause)).checks


async def settle(manager: Manager) -> None:
    """Wait for every clone and destroy task the manager started."""
    for reconciler in manager.reconcilers.values():
        await reconciler.lifecycle.drain(30)


async def state_of_pool(store: Store, pool: str) -> dict[VMState, set[str]]:
    return await store.all_members(pool)

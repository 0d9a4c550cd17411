"""Builds a manager over the real store and a dummy provider, and runs passes until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


def manager_for(settings: Settings, store: Store, provider: DummyProvider) -> Manager:
    return Manager(settings, store, {"dummy": provider}, call_timeout=10, ready_poll_interval=0.02)


async def run_until(
    manager: Manager, done: Callable[[], Awaitable[bool]], timeout: float = 20.0, pause: float = 0.05
) -> int:
    """Run passes until ``done()``; returns the number of passes. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    passes = 0
    while time.monotonic() < deadline:
        await manager.run_once()
        passes += 1
        if await done():
            return passes
        await asyncio.sleep(pause)
    raise AssertionError(f"condition not reached after {passes} passes in {timeout}s")


async def settle(manager: Manager) -> None:
    """Wait for every clone and destroy task the manager started."""
    for reconciler in manager.reconcilers.values():
        await reconciler.lifecycle.drain(30)


async def state_of_pool(store: Store, pool: str) -> dict[VMState, set[str]]:
    return await store.all_members(pool)

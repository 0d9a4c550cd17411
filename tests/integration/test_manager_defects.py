"""Defects found while making the manager's cost follow change (issue 16): each test failed before its fix."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.pools import dummy, manager_for, run_until, settings_with, settle
from vmpooler.domain import PoolTarget
from vmpooler.errors import ProviderError
from vmpooler.providers.dummy import DummyProvider
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "templates/deb", "size": 1}


class FlakyBoot(DummyProvider):
    """The dummy whose first ``vm_ready`` of each VM fails, as a platform's API can while a VM boots."""

    def __init__(self, provider: DummyProvider) -> None:
        super().__init__(provider.name, provider.options)
        self.asked: set[str] = set()

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        if name not in self.asked:
            self.asked.add(name)
            raise ProviderError(f"flaky: {name} not answering yet")
        return await super().vm_ready(pool, name)


async def test_a_transient_error_while_a_vm_boots_keeps_polling(store: Store, inventory_file: Path) -> None:
    provider = FlakyBoot(dummy(inventory_file))
    manager = manager_for(settings_with([POOL]), store, provider)
    await manager.register_pools()

    async def ready() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 1

    await run_until(manager, ready)
    await settle(manager)
    members = await store.all_members("deb")
    assert not members[VMState.FAILED] and not members[VMState.COMPLETED], members
    assert len(provider.asked) == 1, "the first VM should have become ready, not been replaced"
    assert manager.reconcilers["deb"].ctx.breaker.failures == 0


async def test_a_clone_frees_its_slot_once(store: Store, inventory_file: Path) -> None:
    manager = manager_for(settings_with([{**POOL, "size": 2}]), store, dummy(inventory_file))
    await manager.register_pools()
    freed: list[float] = []
    manager.reconcilers["deb"].ctx.on_slot_freed = lambda: freed.append(time.monotonic())

    async def ready() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2

    await run_until(manager, ready)
    await settle(manager)
    assert len(freed) == 2, f"2 clones freed their slot {len(freed)} times"
    assert await store.client.zcard(keys.CLONE_SLOTS) == 0

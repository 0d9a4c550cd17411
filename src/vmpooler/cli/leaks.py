"""Finds the VMs each pool's provider holds that Redis does not know, and destroys them (``vmpooler purge``).

The manager destroys such leaks too (as ``discovered`` VMs), one pass at a time; this is the operator's
tool to see them, or to clear them at once while no manager runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vmpooler.config import Settings
from vmpooler.errors import ProviderError
from vmpooler.manager.context import PoolContext
from vmpooler.manager.loop import policy_for
from vmpooler.providers.base import Provider
from vmpooler.store.redis import Store

#: destroys running at once across all pools: enough to be quick, few enough not to swamp a hypervisor
DESTROY_CONCURRENCY = 8


@dataclass
class PoolLeaks:
    pool: str
    provider: str
    unknown: list[str] = field(default_factory=list)
    #: why the provider's inventory could not be read (then nothing is judged for this pool)
    error: str | None = None
    destroyed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "unknown": self.unknown,
            "destroyed": self.destroyed,
            "failed": self.failed,
            "error": self.error,
        }


def contexts(
    settings: Settings, store: Store, providers: Mapping[str, Provider], call_timeout: float
) -> list[PoolContext]:
    """Each configured pool as the manager sees it, so the provider is asked about the same PoolTarget."""
    return [
        PoolContext(
            name=pool.name,
            policy=policy_for(settings, pool),
            provider=providers[pool.provider],
            store=store,
            provider_options=dict(pool.provider_options),
            call_timeout=call_timeout,
        )
        for pool in settings.pools
    ]


async def find(ctx: PoolContext) -> PoolLeaks:
    found = PoolLeaks(ctx.name, ctx.provider.name)
    # API overrides change what the manager clones from, and so where a provider looks
    overrides = await ctx.store.overrides.for_pool(ctx.name)
    ctx.policy.template = overrides.get("template", ctx.policy.template)
    ctx.policy.clone_target = overrides.get("clone_target", ctx.policy.clone_target)
    try:
        # The provider first, Redis second: the manager records a VM before it asks for the clone, so
        # a VM that appears meanwhile is already in Redis when we read it and is never taken for a leak.
        inventory = set(await ctx.call("vms_in_pool", ctx.provider.vms_in_pool(ctx.target)))
    except ProviderError as exc:
        found.error = str(exc)
        return found
    known = set().union(*(await ctx.store.all_members(ctx.name)).values())
    found.unknown = sorted(inventory - known)
    return found


async def destroy(
    found: list[tuple[PoolContext, PoolLeaks]], on_done: Callable[[str, str], None] = lambda pool, name: None
) -> None:
    """Destroy every unknown VM, recording each result in its PoolLeaks; ``on_done(pool, name)`` after each."""
    limit = asyncio.Semaphore(DESTROY_CONCURRENCY)

    async def one(ctx: PoolContext, leaks: PoolLeaks, name: str) -> None:
        async with limit:
            try:
                await ctx.call("destroy_vm", ctx.provider.destroy_vm(ctx.target, name))
            except ProviderError as exc:
                leaks.failed[name] = str(exc)
            else:
                leaks.destroyed.append(name)
            on_done(ctx.name, name)

    await asyncio.gather(*(one(ctx, leaks, name) for ctx, leaks in found for name in leaks.unknown))
    for _, leaks in found:
        leaks.destroyed.sort()

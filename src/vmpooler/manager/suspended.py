"""A pool's suspended tier: booted VMs kept suspended besides the ready ones, resumed first when those fall short."""

from __future__ import annotations

import asyncio
import logging
import time

from vmpooler.errors import ProviderError, StoreError
from vmpooler.manager.context import PoolContext
from vmpooler.manager.lifecycle import Lifecycle
from vmpooler.states import VMState
from vmpooler.store.records import VMRecord

log = logging.getLogger("vmpooler.manager")


class SuspendedTier:
    """Keeps up to ``policy.suspended`` VMs SUSPENDED. A clone that boots while the ready VMs are at their
    target and the tier is short is suspended into it (``place_booted``); each pass resumes as many as the
    ready VMs are short of their target (``adjust``), which is a resume's time rather than a clone's."""

    def __init__(self, ctx: PoolContext, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        #: VMs being suspended into the tier (still PENDING in Redis), so two booting at once do not overfill it
        self.suspending: set[str] = set()
        #: VMs being resumed (still SUSPENDED in Redis): they count as ready already
        self.resuming: set[str] = set()
        #: booted clones are placed one at a time: two booting together must not both see the ready VMs short
        self._placing = asyncio.Lock()
        lifecycle.on_booted = self.place_booted

    async def place_booted(self, name: str, started: float) -> None:
        """A clone of this pool booted: into the tier when it is short and the ready VMs are not; else ready."""
        ctx = self.ctx
        if ctx.policy.suspended <= 0:
            await ctx.mark_ready(name, started)
            return
        async with self._placing:
            if not await self._wants(name):
                await ctx.mark_ready(name, started)
                return
            self.suspending.add(name)
        began = time.monotonic()
        try:
            await ctx.call("suspend_vm", ctx.provider.suspend_vm(ctx.target, name), vm=name)
            booted = ctx.clock() - started
            reason = f"booted in {booted:.1f}s, suspended in {time.monotonic() - began:.1f}s"
            if await ctx.move(name, VMState.PENDING, VMState.SUSPENDED, reason, VMRecord(ready=ctx.clock()).fields()):
                await ctx.clone_succeeded()
        except ProviderError as exc:
            # its state is unknown (half saved?): it goes, and the next clone takes its place
            ctx.metrics.error("suspend_failed", ctx.name)
            await ctx.move(name, VMState.PENDING, VMState.FAILED, f"suspend failed: {exc}")
        finally:
            # only once it is in the SUSPENDED set (or gone): counted in the tier all along
            self.suspending.discard(name)

    async def _wants(self, name: str) -> bool:
        ctx = self.ctx
        counts = (await ctx.store.counts([ctx.name]))[ctx.name]
        in_tier = counts[VMState.SUSPENDED] - len(self.resuming) + len(self.suspending - {name})
        ready = counts[VMState.READY] + len(self.resuming)
        return ready >= ctx.policy.size and in_tier < ctx.policy.suspended

    async def adjust(self, ready: int, target: int, suspended: set[str], gone: set[str]) -> tuple[bool, int]:
        """One pass over the tier: retire VMs that vanished or are beyond the tier, resume as many as the ready
        VMs are short of ``target`` and the checkouts waiting for the pool. Returns (anything changed, the pass's
        ready excess correction: the VMs being resumed, which will be ready, less those the tier still lacks and
        those the waiters want, which clones are to fill)."""
        ctx = self.ctx
        changed = False
        idle = sorted(suspended - self.lifecycle.busy - self.resuming)
        for name in [n for n in idle if n in gone]:
            changed |= await ctx.move(name, VMState.SUSPENDED, VMState.COMPLETED, "vanished from provider")
        idle = [n for n in idle if n not in gone]
        # checkouts waiting their turn (docs/waiting.md) want VMs beyond the target: resumed for them too
        queued = (await ctx.store.queues.queue_lengths([ctx.name]))[ctx.name]
        short = max(0, target + queued - ready - len(self.resuming))
        for name in idle[:short]:
            self.resuming.add(name)
            self.lifecycle.start(name, self._resume(name))
            changed = True
        idle = idle[short:]
        beyond = len(idle) + len(self.suspending) - ctx.policy.suspended
        for name in idle[: max(0, beyond)]:
            changed |= await ctx.move(
                name, VMState.SUSPENDED, VMState.COMPLETED, f"more suspended VMs than {ctx.policy.suspended}"
            )
        kept = len(suspended - gone) - len(self.resuming)
        lacking = max(0, ctx.policy.suspended - kept)
        # the waiters' VMs are not excess: they are taken as soon as they are ready
        return changed, len(self.resuming) - lacking - queued

    async def _resume(self, name: str) -> None:
        ctx = self.ctx
        began = time.monotonic()
        try:
            await ctx.call("resume_vm", ctx.provider.resume_vm(ctx.target, name), vm=name)
            seconds = time.monotonic() - began
            now = ctx.clock()
            moved = await ctx.store.move(
                ctx.name,
                name,
                VMState.SUSPENDED,
                VMState.READY,
                VMRecord(ready=now).fields(),
                score=now,
                reason=f"resumed in {seconds:.2f}s",
                notify=True,
            )
            if moved:
                log.info("pool %s vm %s: suspended -> ready (resumed in %.2fs)", ctx.name, name, seconds)
                await ctx.store.queues.wake(ctx.name)  # a checkout waiting for this pool may be served now
        except ProviderError as exc:
            ctx.metrics.error("resume_failed", ctx.name)
            await ctx.move(name, VMState.SUSPENDED, VMState.FAILED, f"resume failed: {exc}")
        except StoreError as exc:
            # still SUSPENDED in Redis: the next pass resumes it again (a resume of a running VM succeeds)
            log.warning("pool %s vm %s: store unavailable after its resume: %s", ctx.name, name, exc)
        finally:
            self.resuming.discard(name)

"""One reconcile pass over one pool: compare Redis with the provider and step each VM on."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace

from vmpooler.domain import PoolTarget
from vmpooler.errors import ProviderError
from vmpooler.manager.autoscale import Autoscaler
from vmpooler.manager.context import PoolContext
from vmpooler.manager.lifecycle import Lifecycle
from vmpooler.manager.quarantine import QuarantineKeeper
from vmpooler.manager.quiet import Census, QuietPool
from vmpooler.manager.suspended import SuspendedTier
from vmpooler.states import DOOMED_STATES, VMState
from vmpooler.store.pool_view import Due, PoolView
from vmpooler.store.records import VMRecord

log = logging.getLogger("vmpooler.manager")

Records = dict[str, VMRecord]

#: ready checks run at most this many provider calls at once per pool
CHECK_CONCURRENCY = 16
#: a VM must be missing from this many inventories in a row before it counts as gone: one listing
#: that comes back short (an API hiccup) must not take a user's VM away
MISSING_PASSES = 2


class PoolReconciler:
    """Keeps one pool at its size. ``run_once`` is one pass; it returns True when it changed anything
    (the loop then comes back soon) and never waits on a clone or destroy."""

    def __init__(self, ctx: PoolContext, lifecycle: Lifecycle | None = None, census: Census | None = None) -> None:
        self.ctx = ctx
        #: every pool's set sizes, shared: lets a quiet pass see a change without reading this pool
        self.census = census
        self.quiet = QuietPool()
        #: passes run, and of those the full ones (that read the pool from Redis)
        self.passes = self.full_passes = 0
        self.lifecycle = lifecycle or Lifecycle(ctx)
        #: the policy as configured, to fall back to when an override is removed
        self.configured = replace(ctx.policy)
        #: VM name -> consecutive inventories it was missing from
        self._missing: dict[str, int] = {}
        #: the pool's empty flag as last written, so an unchanged one costs no write
        self._empty: bool | None = None
        #: the last pass wanted more clones than it got clone slots for
        self.starved = False
        #: a template override the provider refused (warned about once)
        self._refused_template: str | None = None
        #: the deadline index was built (or checked) from the records since this manager started
        self._indexed = False
        #: when the next ready or running VM comes due (epoch seconds), as of the last pass
        self.next_due = math.inf
        #: sets the size of a pool with an ``autoscale:`` section
        self.autoscaler = Autoscaler(ctx) if ctx.policy.autoscale is not None else None
        self.quarantine = QuarantineKeeper(ctx)
        self.suspended = SuspendedTier(ctx, self.lifecycle)

    def forget_cached_state(self) -> None:
        self._empty = None
        self._missing.clear()
        self.quiet.forget()
        if self.autoscaler is not None:
            self.autoscaler.forget()

    async def run_once(self, *, quiet: bool = False) -> bool:
        """One pass. With ``quiet`` (nothing announced a change since the last pass) a pool found
        settled last time is only compared with the provider's inventory and the shared census: when
        both match and nothing is due, the pass reads nothing of this pool from Redis."""
        started = time.perf_counter()
        self.passes += 1
        try:
            if quiet and await self._still_quiet():
                return False
            self.full_passes += 1
            return await self._pass()
        finally:
            self.ctx.metrics.manager_pass(self.ctx.name, time.perf_counter() - started)

    async def _still_quiet(self) -> bool:
        ctx = self.ctx
        if self.census is None or not self.quiet.may_skip(ctx.clock(), self.next_due):
            return False
        if self.quiet.contradicted_by(*await self.census.counts(ctx.name)):
            return False
        try:
            inventory = await ctx.call("vms_in_pool", ctx.provider.vms_in_pool(ctx.target))
        except ProviderError:
            return False  # the full pass reports it
        if frozenset(inventory) != self.quiet.members:
            return False
        await ctx.publish_health()
        self.quiet.skipped += 1
        return True

    async def _pass(self) -> bool:
        ctx = self.ctx
        # one round trip for what Redis knows, the ready and running VMs only as far as they are due
        view = await self._view()
        self._apply_overrides(view.overrides)
        if self.autoscaler is not None:
            ctx.policy.size = min(await self.autoscaler.target(), ctx.policy.max_size)
        try:
            inventory = set(await ctx.call("vms_in_pool", ctx.provider.vms_in_pool(ctx.target)))
        except ProviderError as exc:
            # without an inventory nothing can be judged safely: skip the pass, keep every record
            log.warning("pool %s: inventory failed, pass skipped: %s", ctx.name, exc)
            await ctx.publish_health(unreachable=f"provider {ctx.provider.name!r} cannot list the pool's VMs: {exc}")
            return False
        await ctx.publish_health()
        members = view.members
        self._count_missing(inventory, members[VMState.RUNNING] | members[VMState.READY] | members[VMState.SUSPENDED])
        changed = await self._discover(inventory, members)
        busy = self.lifecycle.busy
        records = {name: fields for name, fields in view.records.items() if name not in busy}
        changed |= await self._check_running(inventory, members[VMState.RUNNING], view.due)
        changed |= await self._check_ready(inventory, members[VMState.READY], view.due, busy)
        changed |= await self._check_pending(inventory, members[VMState.PENDING], records)
        changed |= await self._drain_if_changed(members, view.prepared, view.reset_requested)
        released, quarantine_due = await self.quarantine.run(members[VMState.QUARANTINE])
        changed |= released
        # VMs doomed during this pass are destroyed now too: look again, but only if something changed
        self._destroy_doomed(await ctx.store.all_members(ctx.name) if changed else members)
        changed |= await self._resize(view, changed)
        # an autoscaled pool's target moves with the clock: it is looked at again each minute
        next_due = view.due.next_at if self.autoscaler is None else min(view.due.next_at, ctx.clock() + 60)
        self.next_due = min(next_due, quarantine_due)
        # a suspended tier short of its size (or over it) is not settled: a later pass fills it
        unsettled = changed or view.count(VMState.SUSPENDED) != ctx.policy.suspended
        self.quiet.settle(view, unsettled, bool(self.lifecycle.busy), ctx.policy.size + view.demand)
        return changed

    async def _view(self) -> PoolView:
        """This pass's view; the deadline index is first built from the records at start and again
        whenever it disagrees with the state sets (VMs written by the original vmpooler, or before
        the index existed)."""
        ctx = self.ctx
        policy = ctx.policy
        view = await ctx.store.pool_view(ctx.name, ctx.clock(), policy.ready_ttl, policy.check_interval)
        # at start only running VMs need it: their lifetimes may end by another vm_lifetime than this
        # manager's (the ready entries hold times, not deadlines)
        rewrite = not self._indexed and bool(view.members[VMState.RUNNING])
        self._indexed = True
        if view.indexed and not rewrite:
            return view
        written = await ctx.store.deadlines.reindex(ctx.name, policy.lifetime_hours, rewrite=rewrite)
        if written:
            log.info("pool %s: deadline index rebuilt from the VM records (%d entries)", ctx.name, written)
        return await ctx.store.pool_view(ctx.name, ctx.clock(), policy.ready_ttl, policy.check_interval)

    def _apply_overrides(self, overrides: dict[str, str]) -> None:
        """Take the API's overrides (or, once removed, the configured values) into the policy."""
        ctx = self.ctx
        try:
            # a size stored out of range (by hand, by an older version) is clamped, never cloned for
            ctx.policy.size = min(max(0, int(overrides.get("size", self.configured.size))), ctx.policy.max_size)
        except ValueError:
            log.warning("pool %s: ignoring pool size override %r", ctx.name, overrides["size"])
            ctx.policy.size = self.configured.size
        template = overrides.get("template", self.configured.template)
        if template != self.configured.template:
            # stored before the API checked templates, or by hand: the provider still has the last word
            configured = PoolTarget(ctx.name, self.configured.template, dict(ctx.provider_options))
            problem = ctx.provider.template_problem(ctx.provider.options, configured, template)
            if problem is not None:
                if self._refused_template != template:
                    log.warning("pool %s: ignoring template override %r: %s", ctx.name, template, problem)
                self._refused_template = template
                template = self.configured.template
        ctx.policy.template = template
        ctx.policy.clone_target = overrides.get("clone_target", self.configured.clone_target)

    def _count_missing(self, inventory: set[str], tracked: set[str]) -> None:
        self._missing = {name: self._missing.get(name, 0) + 1 for name in tracked - inventory}

    def _gone(self, name: str) -> bool:
        return self._missing.get(name, 0) >= MISSING_PASSES

    async def _discover(self, inventory: set[str], members: dict[VMState, set[str]]) -> bool:
        """VMs the provider has and Redis does not know are leaks: discovered, then destroyed."""
        known = set().union(*members.values())
        unknown = sorted(inventory - known)
        found = await self.ctx.store.discover(self.ctx.name, unknown) if unknown else []
        changed = False
        for name in set(found) | members[VMState.DISCOVERED]:
            changed |= await self.ctx.move(name, VMState.DISCOVERED, VMState.COMPLETED, "unknown to Redis: leaked VM")
        return changed

    async def _check_running(self, inventory: set[str], running: set[str], due: Due) -> bool:
        ctx = self.ctx
        changed = False
        for name in sorted(running - inventory):
            if self._gone(name):
                changed |= await ctx.move(name, VMState.RUNNING, VMState.COMPLETED, "vanished from provider")
        over = [name for name in due.lifetime if name in inventory]
        if not over:
            return changed
        # the index is a hint: a record changed by hand, or under another vm_lifetime, has the last word
        now = ctx.clock()
        later: dict[str, float] = {}
        for name, record in zip(over, await ctx.store.records(over), strict=True):
            ends = record.lifetime_end(ctx.policy.lifetime_hours)
            if ends > now:
                later[name] = ends
                continue
            changed |= await ctx.move(
                name,
                VMState.RUNNING,
                VMState.COMPLETED,
                f"lifetime of {record.lifetime_hours(ctx.policy.lifetime_hours):g}h ran out",
            )
        await ctx.store.deadlines.reschedule(ctx.name, later)
        return changed

    async def _check_ready(self, inventory: set[str], ready: set[str], due: Due, busy: set[str]) -> bool:
        ctx = self.ctx
        changed = False
        for name in sorted(ready - inventory):
            if self._gone(name):
                changed |= await ctx.move(name, VMState.READY, VMState.COMPLETED, "vanished from provider")
        expired = [name for name in due.expired if name in inventory and name not in busy]
        for name in expired:
            changed |= await ctx.move(
                name, VMState.READY, VMState.COMPLETED, f"ready longer than {ctx.policy.ready_ttl:.0f}s"
            )
        gone = set(expired) | busy
        checks = [name for name in due.check if name in inventory and name not in gone]
        if not checks:
            return changed
        limit = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def alive(name: str) -> bool | None:
            async with limit:
                try:
                    return await ctx.call("vm_ready", ctx.provider.vm_ready(ctx.target, name))
                except ProviderError as exc:
                    # not judged: it stays due, so the next pass asks again
                    log.warning("pool %s vm %s: ready check errored: %s", ctx.name, name, exc)
                    return None

        answers = dict(zip(checks, await asyncio.gather(*(alive(name) for name in checks)), strict=True))
        await ctx.store.deadlines.passed_checks(ctx.name, [n for n, ok in answers.items() if ok], ctx.clock())
        for name, ok in answers.items():
            if ok is not False:
                continue
            ctx.metrics.error("ready_check_failed", ctx.name)
            changed |= await ctx.move(
                name,
                VMState.READY,
                VMState.FAILED,
                "failed its ready check",
                VMRecord(clone_error="failed a ready re-check").fields(),
            )
        return changed

    async def _check_pending(self, inventory: set[str], pending: set[str], records: Records) -> bool:
        """Pending VMs with no clone task here (left by a crashed or stopped manager)."""
        ctx = self.ctx
        now = ctx.clock()
        names = sorted(pending & records.keys())
        changed = False
        owners = {owner for n in names if (owner := records[n].clone_owner)}
        alive = await ctx.store.managers_alive(owners - {ctx.manager_id}) | {ctx.manager_id}
        for name in names:
            record = records[name]
            started = record.clone or now
            owner = record.clone_owner
            # its clone task is gone: this manager finished it, or the manager that ran it died
            orphaned = bool(owner) and (owner == ctx.manager_id or owner not in alive)
            if owner and orphaned:
                # a killed manager's slot would otherwise stay taken until its lease (timeout +
                # call timeout) ran out: task_limit such slots stop every pool cloning for that long
                await ctx.store.slots.release(ctx.store.slots.member(ctx.name, name, owner))
            if name in inventory:
                try:
                    ready = await ctx.call("vm_ready", ctx.provider.vm_ready(ctx.target, name))
                except ProviderError:
                    ready = False
                if ready:
                    changed |= await ctx.mark_ready(name, started)
                    continue
            if orphaned:
                changed |= await ctx.move(
                    name,
                    VMState.PENDING,
                    VMState.FAILED,
                    "clone interrupted: the manager cloning it stopped",
                    VMRecord(clone_error="clone interrupted").fields(),
                )
            elif now - started > ctx.policy.timeout:
                await ctx.clone_failed(f"clone {name} not ready within {ctx.policy.timeout:.0f}s", permanent=False)
                changed |= await ctx.move(
                    name,
                    VMState.PENDING,
                    VMState.FAILED,
                    f"not ready within {ctx.policy.timeout:.0f}s",
                    VMRecord(clone_error="timed out").fields(),
                )
        return changed

    async def _drain_if_changed(
        self, members: dict[VMState, set[str]], prepared: tuple[str | None, str | None], reset_requested: bool
    ) -> bool:
        """Drain the pool's ready and pending VMs when they were made from another template or for
        another clone target (an API override), or when a reset was asked for."""
        ctx = self.ctx
        template, target = prepared
        reasons = []
        if template is not None and template != ctx.policy.template:
            reasons.append(f"template changed from {template} to {ctx.policy.template}")
        if target is not None and target != ctx.policy.clone_target:
            reasons.append(f"clone target changed from {target or 'default'} to {ctx.policy.clone_target or 'default'}")
        if reset_requested and await ctx.store.overrides.take_reset(ctx.name):
            reasons.append("pool reset requested")
        if (template, target) != (ctx.policy.template, ctx.policy.clone_target):
            await ctx.store.overrides.set_prepared(ctx.name, ctx.policy.template, ctx.policy.clone_target)
        if not reasons:
            return False
        reason = "; ".join(reasons)
        for name in members[VMState.READY]:
            await ctx.move(name, VMState.READY, VMState.COMPLETED, reason)
        for name in members[VMState.PENDING]:
            await ctx.move(name, VMState.PENDING, VMState.FAILED, reason)
        for name in members[VMState.SUSPENDED] - self.lifecycle.busy:
            await ctx.move(name, VMState.SUSPENDED, VMState.COMPLETED, reason)
        return True

    def _destroy_doomed(self, members: dict[VMState, set[str]]) -> None:
        for state in DOOMED_STATES:
            for name in members[state]:
                self.lifecycle.start_destroy(name, state)

    async def _resize(self, view: PoolView, changed_this_pass: bool) -> bool:
        """Remove ready VMs beyond ``size``; clone up to ``size`` within the global task limit."""
        ctx = self.ctx
        # open on-demand requests waiting on this pool raise its level until they are served
        target = ctx.policy.size + view.demand
        ready, pending, running = (view.count(s) for s in (VMState.READY, VMState.PENDING, VMState.RUNNING))
        if changed_this_pass or ready + pending > target:
            # the view is from the start of the pass: count again before removing or adding VMs
            counts = (await ctx.store.counts([ctx.name]))[ctx.name]
            ready, pending, running = counts[VMState.READY], counts[VMState.PENDING], counts[VMState.RUNNING]
        ctx.metrics.levels(ctx.name, ready, running, pending, ctx.policy.size)
        empty = ready == 0 and ctx.policy.size > 0
        if empty != self._empty:
            await ctx.store.set_empty(ctx.name, empty)
            self._empty = empty
        excess = ready + pending - target
        changed = False
        if ctx.policy.suspended or view.count(VMState.SUSPENDED):
            # the suspended tier: resumes first (fast), then clones fill the ready VMs and the tier
            suspended = view.members[VMState.SUSPENDED]
            gone = {name for name in suspended if self._gone(name)}
            changed, correction = await self.suspended.adjust(ready, target, suspended, gone)
            excess += correction
        if excess > 0 and ready > 0:
            surplus = sorted(await ctx.store.members(ctx.name, VMState.READY))[: min(excess, ready)]
            for name in surplus:
                changed |= await ctx.move(name, VMState.READY, VMState.COMPLETED, f"more ready VMs than {target}")
        self.starved = False
        for _ in range(max(0, -excess)):
            if await self.lifecycle.start_clone() is None:
                self.starved = not ctx.breaker.degraded  # no slot, rather than a failing provider
                break
            changed = True
        return changed

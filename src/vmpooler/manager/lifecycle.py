"""The long provider work of one pool, each VM's in its own task: clone then wait for boot, destroy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from vmpooler.errors import LeaseLost, PermanentProviderError, ProviderError, StoreError
from vmpooler.manager.context import PoolContext
from vmpooler.manager.names import vm_name
from vmpooler.states import VMState
from vmpooler.store.records import VMRecord

log = logging.getLogger("vmpooler.manager")

NAME_ATTEMPTS = 8


class Lifecycle:
    """Starts and tracks clone and destroy tasks so a reconcile pass never waits on a provider."""

    def __init__(self, ctx: PoolContext) -> None:
        self.ctx = ctx
        self.busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: what a clone that booted becomes (name, clone start): ready, or suspended (manager/suspended.py)
        self.on_booted: Callable[[str, float], Awaitable[object]] = ctx.mark_ready

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on ``name`` in the background; the VM is busy (passes leave it alone) until it ends."""
        self._spawn(name, work)

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self.busy.add(name)
        task: asyncio.Task[None] = asyncio.create_task(work, name=f"{self.ctx.name}:{name}")
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self.busy.discard(name)
            if not done.cancelled() and done.exception() is not None:
                log.error("pool %s vm %s: task failed", self.ctx.name, name, exc_info=done.exception())

        task.add_done_callback(finished)

    async def start_clone(self) -> str | None:
        """Reserve a clone slot and a name, record the VM as pending, and clone it in the background.

        The pending record is written before the provider is asked, so a crash at any later point
        leaves a record the next manager finds: the VM can never leak.
        """
        # the provider's pools count against its max_vms together: count and record under one lock
        async with self.ctx.quota_lock:
            # the quota first: asking the breaker may start its one probe clone
            if await self.ctx.provider_full() or not self.ctx.breaker.allow_clone():
                return None
            return await self._reserve()

    async def _reserve(self) -> str | None:
        ctx = self.ctx
        now = ctx.clock()
        for attempt in range(NAME_ATTEMPTS):
            name = vm_name(ctx.policy.prefix, attempt)
            slot = ctx.store.slots.member(ctx.name, name, ctx.manager_id)
            lease = ctx.policy.timeout + ctx.call_timeout
            if not await ctx.store.slots.acquire(slot, now, lease, ctx.policy.task_limit):
                return None
            fields = VMRecord(clone=now, domain=ctx.policy.domain or "", clone_owner=ctx.manager_id).fields()
            try:
                recorded = await ctx.store.create_pending(ctx.name, name, fields, ctx.fence)
            except LeaseLost:
                await ctx.store.slots.release(slot)
                raise
            if recorded:
                log.info("pool %s vm %s: new -> pending (filling to %d)", ctx.name, name, ctx.policy.size)
                self._spawn(name, self._clone(name, slot))
                return name
            await ctx.store.slots.release(slot)
        log.warning("pool %s: no free VM name after %d draws", ctx.name, NAME_ATTEMPTS)
        return None

    async def _clone(self, name: str, slot: str) -> None:
        ctx = self.ctx
        started = ctx.clock()
        deadline = time.monotonic() + ctx.policy.timeout
        slot_held = True
        try:
            info = await ctx.call("create_vm", ctx.provider.create_vm(ctx.target, name), ctx.policy.timeout, vm=name)
            clone_seconds = ctx.clock() - started
            fields = VMRecord(clone_time=clone_seconds, ip=info.ip or "").fields()
            await ctx.store.record_clone_time(ctx.name, name, ctx.clock(), clone_seconds, fields)
            ctx.metrics.cloned(ctx.name, clone_seconds)
            # the clone is done: its slot goes to the next clone while this VM boots
            slot_held = False
            await self._free_slot(slot)
            while time.monotonic() < deadline:
                if await self._booted(name):
                    await self.on_booted(name, started)
                    return
                await asyncio.sleep(ctx.ready_poll_interval)
            await ctx.clone_failed(f"clone {name} not ready within {ctx.policy.timeout:.0f}s", permanent=False)
            await ctx.store.ondemand.record_clone_failure(ctx.name, "not ready within timeout", permanent=False)
            ctx.metrics.error("markedasfailed", ctx.name)
            await ctx.move(
                name,
                VMState.PENDING,
                VMState.FAILED,
                "not ready within timeout",
                VMRecord(clone_error=f"not ready within {ctx.policy.timeout:.0f}s").fields(),
            )
        except ProviderError as exc:
            permanent = isinstance(exc, PermanentProviderError)
            await ctx.clone_failed(f"clone failed: {exc}", permanent)
            await ctx.store.ondemand.record_clone_failure(ctx.name, str(exc), permanent)
            ctx.metrics.error(exc.metric_key, ctx.name)  # clone_failed, or permanently_failed
            await ctx.move(
                name,
                VMState.PENDING,
                VMState.FAILED,
                f"clone failed: {exc}",
                VMRecord(clone_error=str(exc), clone_error_class=type(exc).__name__).fields(),
            )
        except StoreError as exc:
            # Redis went away mid-clone: the pending record stays, and a later pass settles it
            log.warning("pool %s vm %s: store unavailable during clone: %s", ctx.name, name, exc)
        finally:
            if slot_held:
                await self._free_slot(slot)

    async def _free_slot(self, slot: str) -> None:
        try:
            await self.ctx.store.slots.release(slot)
        except StoreError:
            pass  # the lease expires on its own
        self.ctx.on_slot_freed()

    async def _booted(self, name: str) -> bool:
        """One readiness poll. An error counts as "not yet": a platform's API often fails while a VM
        boots, and only the boot deadline (or a failed clone) may fail the VM, as in a pass's check."""
        ctx = self.ctx
        try:
            return await ctx.call("vm_ready", ctx.provider.vm_ready(ctx.target, name))
        except ProviderError as exc:
            log.debug("pool %s vm %s: readiness poll errored, polling on: %s", ctx.name, name, exc)
            return False

    def start_destroy(self, name: str, state: VMState) -> None:
        if name not in self.busy:
            self._spawn(name, self._destroy(name, state))

    async def _destroy(self, name: str, state: VMState) -> None:
        ctx = self.ctx
        started = time.monotonic()
        try:
            await ctx.call("destroy_vm", ctx.provider.destroy_vm(ctx.target, name), vm=name)
            ctx.metrics.destroyed(ctx.name, time.monotonic() - started)
            if await ctx.store.mark_destroyed(ctx.name, name, state, ctx.clock()):
                log.info("pool %s vm %s: %s -> destroyed", ctx.name, name, state)
        except ProviderError as exc:
            # stays in its doomed set, so the next pass tries again
            ctx.metrics.error(exc.metric_key, ctx.name)  # destroy_failed
            log.warning("pool %s vm %s: destroy failed, will retry: %s", ctx.name, name, exc)
        except StoreError as exc:
            log.warning("pool %s vm %s: store unavailable after destroy: %s", ctx.name, name, exc)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running tasks, then cancel the rest (their records stay)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

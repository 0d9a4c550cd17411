"""Carries out the VM operations the API queued (snapshot, revert, add disk) through the providers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from vmpooler.errors import NotSupported, ProviderError
from vmpooler.manager.cadence import every
from vmpooler.manager.context import PoolContext
from vmpooler.manager.wakeups import Wakeups, idle_sleep
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.events import TASKS
from vmpooler.store.records import VMRecord, format_time, task_error_field
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")

KINDS = ("snapshot", "revert", "disk")
#: a task taken this long ago and not finished belonged to a manager that died: queue it again
STALE_AFTER_SECONDS = 600.0
#: with nothing queued the worker looks this often (the API's announcement of a task wakes it at once)
IDLE_POLL_SECONDS = 10.0


class TaskWorker:
    """One pass takes every queued task and runs it; ``run_once`` is what the loop and tests call."""

    def __init__(self, store: Store, pools: Mapping[str, PoolContext], clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pools = pools
        self.clock = clock

    async def run_once(self) -> int:
        done = 0
        for kind in KINDS:
            now = self.clock()
            await self.store.tasks.requeue_stale(kind, now - STALE_AFTER_SECONDS)
            while (task := await self.store.tasks.take(kind, now)) is not None:
                vm, argument = task
                await self._run(kind, vm, argument)
                await self.store.tasks.done(kind, vm, argument)
                done += 1
        return done

    async def _run(self, kind: str, vm: str, argument: str) -> None:
        found = await self.store.locate(vm)
        if found is None or found[1] is VMState.DESTROYED or found[0] not in self.pools:
            log.warning("%s of %s dropped: the VM is gone or its pool is not managed here", kind, vm)
            return
        ctx = self.pools[found[0]]
        try:
            if kind == "snapshot":
                await ctx.call("create_snapshot", ctx.provider.create_snapshot(ctx.target, vm, argument))
                await self.store.update_vm(vm, VMRecord(snapshots={argument: format_time(ctx.clock())}).fields())
            elif kind == "revert":
                await ctx.call("revert_snapshot", ctx.provider.revert_snapshot(ctx.target, vm, argument))
            else:
                await ctx.call("create_disk", ctx.provider.create_disk(ctx.target, vm, int(argument)))
                disks = (*(await self.store.record(vm)).disks, f"+{argument}gb")
                await self.store.update_vm(vm, VMRecord(disks=disks).fields())
            log.info("pool %s vm %s: %s %s done", ctx.name, vm, kind, argument)
        except NotSupported as exc:
            await self.store.update_vm(vm, {task_error_field(kind): str(exc)})
            log.warning("pool %s vm %s: %s not supported: %s", ctx.name, vm, kind, exc)
        except ProviderError as exc:
            await self.store.update_vm(vm, {task_error_field(kind): str(exc)})
            log.warning("pool %s vm %s: %s %s failed: %s", ctx.name, vm, kind, argument, exc)

    async def run(self, stop: asyncio.Event, metrics: Metrics, *, wakeups: Wakeups | None = None) -> None:
        """Again after a second when a pass found work; otherwise after IDLE_POLL_SECONDS, or at once
        when the API announces a task on ``wakeups`` (each second while that is not listening)."""
        done = [0]

        async def run_pass() -> None:
            done[0] = await self.run_once()

        sleep = idle_sleep(wakeups, TASKS, lambda: done[0] > 0, IDLE_POLL_SECONDS)
        await every(1.0, stop, run_pass, name="tasks", metrics=metrics, sleep=sleep)

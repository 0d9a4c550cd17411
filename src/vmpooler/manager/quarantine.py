"""A pool's quarantined VMs (failed hand-out checks): destroyed after ``quarantine_hours``; and the
failure rate of the checks, which opens the pool's breaker when its VMs keep failing them."""

from __future__ import annotations

import logging
import math

from vmpooler.manager.context import PoolContext
from vmpooler.states import VMState

log = logging.getLogger("vmpooler.manager")


class QuarantineKeeper:
    def __init__(self, ctx: PoolContext) -> None:
        self.ctx = ctx
        #: checks before this time were already judged (they opened the breaker once)
        self._judged_until = -math.inf

    async def run(self, quarantined: set[str]) -> tuple[bool, float]:
        """One pass: (anything changed, when the next quarantined VM comes due; inf when none)."""
        changed = await self._judge_rate()
        if not quarantined:
            return changed, math.inf
        ctx = self.ctx
        keep = ctx.policy.quarantine_hours * 3600
        now = ctx.clock()
        next_due = math.inf
        for vm in await ctx.store.handout.quarantined([ctx.name]):
            if vm.name not in quarantined:
                continue
            since = vm.since if vm.since is not None else now - keep  # unreadable: its time is up
            if now - since >= keep:
                changed |= await ctx.move(
                    vm.name, VMState.QUARANTINE, VMState.COMPLETED, f"quarantined {ctx.policy.quarantine_hours:g}h"
                )
            else:
                next_due = min(next_due, since + keep)
        return changed, next_due

    async def _judge_rate(self) -> bool:
        ctx = self.ctx
        check = ctx.policy.handout_check
        if check is None:
            return False
        now = ctx.clock()
        since = max(now - check.window_s, self._judged_until)
        checks, failures = await ctx.store.handout.failure_rate(ctx.name, since, now)
        if checks < check.min_checks or failures / checks <= check.max_failure_rate:
            return False
        problem = (
            f"{failures} of {checks} VMs failed their hand-out check ({check.describe()}) "
            f"in the last {(now - since) / 60:.0f} min: template {ctx.policy.template!r} looks broken"
        )
        # the minute these counts end in is judged: the next trip needs new failures
        self._judged_until = (now // 60 + 1) * 60
        if ctx.breaker.trip(problem):
            log.warning("pool %s: circuit breaker open: %s", ctx.name, problem)
            ctx.metrics.error("handout_failure_rate", ctx.name)
            await ctx.publish_health()
            return True
        return False

"""An autoscaled pool's side of the manager: learn from the pool's history, ask ``sizing.decide`` for
the ready target, keep what was learned in Redis and say when the target changes."""

from __future__ import annotations

import logging
from collections import deque

from vmpooler.manager.context import PoolContext
from vmpooler.sizing import Decision, Observed, Profile, decide, learn_minute, learn_refill
from vmpooler.store.autoscale import AutoscaleStore
from vmpooler.store.history import minute_of

log = logging.getLogger("vmpooler.manager")

#: a fresh profile learns from this much history (the one-minute points are kept a day)
FIRST_LEARNING_S = 24 * 3600


class Autoscaler:
    """``await target()`` once per pass: the target for the pool's ``size``."""

    def __init__(self, ctx: PoolContext) -> None:
        if ctx.policy.autoscale is None:
            raise ValueError(f"pool {ctx.name} has no autoscale section")
        self.ctx = ctx
        self.spec = ctx.policy.autoscale
        self.store = AutoscaleStore(ctx.store.client, ctx.store.eventlog.max_length)
        self.profile: Profile | None = None
        self.decision: Decision | None = None
        self._dirty = False
        #: the minutes learned in the last day: (start, idle VM-seconds, checkouts)
        self._recent: deque[tuple[int, float, int]] = deque()
        ctx.on_ready = self._refilled

    def forget(self) -> None:
        """Another manager may have learned meanwhile (the pool's lease moved): read the profile again."""
        self.profile = None
        self._dirty = False
        self._recent.clear()

    def _refilled(self, seconds: float) -> None:
        if self.profile is not None:
            self.profile = learn_refill(self.profile, seconds)
            self._dirty = True

    async def target(self) -> int:
        """The ready target now."""
        ctx = self.ctx
        now = ctx.clock()
        # checkouts waiting their turn (docs/waiting.md): each asks for at least one VM
        queued = (await ctx.store.queues.queue_lengths([ctx.name]))[ctx.name]
        if self.profile is None:
            self.profile = await self.store.load(ctx.name)
        await self._learn(now)
        counted = await ctx.store.history.unsampled([ctx.name], "checkouts", now)
        refused = await ctx.store.history.unsampled([ctx.name], "refused", now)
        # the counts cover this minute and the one before it (until the history sampler takes it)
        window = now - minute_of(now) + 60
        observed = Observed(
            now, counted[ctx.name] + refused[ctx.name], window, queued, clone_slots=ctx.policy.task_limit
        )
        decision = decide(self.spec, self.profile, observed)
        if self.decision is None or decision.target != self.decision.target:
            before = "none" if self.decision is None else self.decision.target
            log.info("pool %s: autoscale target %s -> %d (%s)", ctx.name, before, decision.target, decision.reason)
            await self.store.publish(ctx.name, self._published(decision, now))
        self.decision = decision
        if self._dirty:
            await self.store.save(ctx.name, self.profile)
            self._dirty = False
        return decision.target

    async def _learn(self, now: float) -> None:
        """Every minute point the history sampler wrote since the profile last learned (checkouts and
        the checkouts an empty pool refused: both are demand)."""
        assert self.profile is not None
        since = max(self.profile.learned_through + 60, now - FIRST_LEARNING_S)
        points = await self.ctx.store.history.points(self.ctx.name, "1m", since)
        for point in sorted(points, key=lambda p: int(p["t"])):
            demand = int(point.get("checkouts", 0)) + int(point.get("refused", 0))
            self.profile = learn_minute(self.profile, int(point["t"]), demand)
            self._recent.append((int(point["t"]), 60.0 * float(point.get("ready", 0)), demand))
            self._dirty = True
        while self._recent and self._recent[0][0] < now - FIRST_LEARNING_S:
            self._recent.popleft()

    def _published(self, decision: Decision, now: float) -> dict[str, object]:
        """What /status shows of the decision; idle VM-seconds per checkout over the last day's minutes
        (a ready VM counts as idle: the history point's ready level, a minute long)."""
        idle = sum(seconds for _, seconds, _ in self._recent)
        checkouts = sum(count for _, _, count in self._recent)
        return {
            "target": decision.target,
            "reason": decision.reason,
            "at": round(now, 3),
            "idle_vm_seconds_per_checkout": round(idle / checkouts, 1) if checkouts else None,
        }

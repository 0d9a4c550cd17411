"""The live ``/status`` report: capacity, queue, clone and boot times, per-pool levels, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from vmpooler.config import PoolSettings, Settings
from vmpooler.limits import pool_sizes
from vmpooler.states import VMState
from vmpooler.store.autoscale import AutoscaleStore
from vmpooler.store.redis import Store
from vmpooler.store.stats import DayDurations
from vmpooler.store.waits import WaitStore

SECTIONS = ("boot", "capacity", "clone", "pools", "queue", "status")
#: a report is reused this long unless this process changed something first (then at once); other
#: processes' changes (the manager, other API workers) show within this time
CACHE_SECONDS = 1.0


def duration_stats(day: DayDurations) -> dict[str, Any]:
    average = round(day.total / day.count, 2) if day.count else 0
    return {
        "duration": {
            "average": average,
            "min": round(day.minimum, 2),
            "max": round(day.maximum, 2),
            "total": round(day.total, 2),
        },
        "count": {"total": day.count},
    }


class StatusService:
    """Builds the status report from one pipelined read of every pool's set sizes."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.started_at = clock()
        self._cache: dict[frozenset[str], tuple[float, dict[str, Any]]] = {}
        #: reports being built now: requests arriving meanwhile share one build instead of each
        #: starting their own (a stampede of identical Redis reads whenever the cache runs out)
        self._building: dict[frozenset[str], asyncio.Future[dict[str, Any]]] = {}

    def invalidate(self) -> None:
        """Called after any change this process makes (a checkout, a return, an override)."""
        self._cache.clear()
        self._building.clear()  # a build that began before the change must not serve requests after it

    async def status(self, views: set[str] | None = None) -> dict[str, Any]:
        """The report; ``views`` limits it to those sections (``status`` is always there)."""
        wanted = frozenset(SECTIONS if views is None else (views & set(SECTIONS)) | {"status"})
        now = self.clock()
        cached = self._cache.get(wanted)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            report = dict(cached[1])
            report["status"] = {**report["status"], "uptime": round(now - self.started_at, 1)}
            return report
        building = self._building.get(wanted)
        if building is None:
            building = asyncio.ensure_future(self._build(wanted))
            self._building[wanted] = building
            building.add_done_callback(lambda done: self._finished(wanted, done, now))
        # shielded: one caller giving up (a closed connection) must not cancel the others' build
        return dict(await asyncio.shield(building))

    def _finished(self, wanted: frozenset[str], done: asyncio.Future[dict[str, Any]], started: float) -> None:
        if self._building.get(wanted) is done:
            del self._building[wanted]
            if not done.cancelled() and done.exception() is None:
                self._cache[wanted] = (started, done.result())

    async def _build(self, wanted: frozenset[str]) -> dict[str, Any]:
        pools = [pool.name for pool in self.settings.pools]
        counts = await self.store.counts(pools)
        size_of = pool_sizes(self.settings, await self.store.overrides.all("size"))
        now = self.clock()
        report: dict[str, Any] = {}
        empty = [p for p in pools if counts[p][VMState.READY] == 0 and size_of[p] > 0]
        health = {pool: h for pool, h in (await self.store.health.degraded()).items() if pool in size_of}
        problems = []
        if empty:
            problems.append(f"Found {len(empty)} empty pool{'' if len(empty) == 1 else 's'}.")
        if health:
            problems.append(
                f"{len(health)} pool{' cannot' if len(health) == 1 else 's cannot'} be filled: "
                + "; ".join(f"{pool}: {h.get('problem', 'unknown problem')}" for pool, h in sorted(health.items()))
            )
        status: dict[str, Any] = {
            "ok": not problems,
            "message": " ".join(problems) or "Battle station fully armed and operational.",
        }
        if empty:
            status["empty"] = empty
        if health:
            status["degraded"] = sorted(health)
        status["uptime"] = round(now - self.started_at, 1)
        report["status"] = status
        ready = sum(c[VMState.READY] for c in counts.values())
        if "capacity" in wanted:
            total = sum(size_of.values())
            report["capacity"] = {
                "current": ready,
                "total": total,
                "percent": round(100.0 * ready / total, 1) if total else 0,
            }
        if "queue" in wanted:
            pending = sum(c[VMState.PENDING] for c in counts.values())
            cloning = min(pending, await self.store.slots.in_flight(now))
            running = sum(c[VMState.RUNNING] for c in counts.values())
            completed = sum(c[VMState.COMPLETED] + c[VMState.FAILED] for c in counts.values())
            report["queue"] = {
                "requested": await self.store.ondemand.total_demand(),
                "pending": pending,
                "cloning": cloning,
                "booting": pending - cloning,
                "ready": ready,
                "running": running,
                "completed": completed,
                "total": pending + ready + running + completed,
            }
        today = [datetime.fromtimestamp(now, UTC).date()]
        for kind in ("boot", "clone"):
            if kind in wanted:
                report[kind] = duration_stats((await self.store.stats.durations(kind, today))[0])
        if "pools" in wanted:
            lastboot = await self.store.lastboot()
            autoscaled = await self._autoscale_entries(now)
            waiting = await self.store.queues.queue_lengths(pools)
            report["pools"] = {}
            for pool in self.settings.pools:
                entry: dict[str, Any] = {
                    "ready": counts[pool.name][VMState.READY],
                    "running": counts[pool.name][VMState.RUNNING],
                    "pending": counts[pool.name][VMState.PENDING],
                    "max": size_of[pool.name],
                    "lastBoot": lastboot.get(pool.name, ""),
                    "queue": waiting[pool.name],  # checkouts waiting their turn (docs/waiting.md)
                }
                if pool.alias:
                    entry["alias"] = pool.alias_as_configured
                if pool.name in health:
                    entry["degraded"] = health[pool.name]
                if pool.name in autoscaled:
                    entry["autoscale"] = autoscaled[pool.name]
                entry.update(_held_apart(pool, counts[pool.name]))
                report["pools"][pool.name] = entry
        return dict(sorted(report.items()))

    async def _autoscale_entries(self, now: float) -> dict[str, dict[str, Any]]:
        """Each autoscaled pool's bounds, the manager's latest decision, and the last day's SLO figures."""
        pools = {p.name: p.autoscale for p in self.settings.pools if p.autoscale is not None}
        if not pools:
            return {}
        decisions = await AutoscaleStore(self.store.client).decisions()
        slo = await WaitStore(self.store.client).attainment(list(pools), now)
        out = {}
        for name, scale in pools.items():
            decided = decisions.get(name, {})
            out[name] = {
                **scale.model_dump(),
                "target": decided.get("target"),
                "reason": decided.get("reason"),
                "idle_vm_seconds_per_checkout": decided.get("idle_vm_seconds_per_checkout"),
                "checkouts_24h": slo[name].checkouts,
                "slo_attainment_24h": round(slo[name].attainment, 4),
                "burn_rate_24h": round(slo[name].burn_rate, 2),
            }
        return out

    async def poolstat(self, names: list[str]) -> dict[str, Any]:
        """``{pools: {pool: {ready, max, alias}}}`` for the pools named (by name or alias)."""
        wanted = [p for p in self.settings.pools if p.name in names or set(p.alias) & set(names)]
        counts = await self.store.counts([p.name for p in wanted])
        sizes = pool_sizes(self.settings, await self.store.overrides.all("size"))
        out: dict[str, Any] = {}
        for pool in wanted:
            entry: dict[str, Any] = {
                "ready": counts[pool.name][VMState.READY],
                "max": sizes[pool.name],
            }
            if pool.alias:
                entry["alias"] = pool.alias_as_configured
            out[pool.name] = entry
        return {"pools": out}

    async def total_running(self) -> int:
        counts = await self.store.counts([p.name for p in self.settings.pools])
        return sum(c[VMState.RUNNING] for c in counts.values())


def _held_apart(pool: PoolSettings, counts: Mapping[VMState, int]) -> dict[str, int]:
    """Ours: the pool's VMs held out of the ready ones, for pools that can have them (or still do): those that
    failed their hand-out check (docs/health.md) and the suspended tier (docs/fast-clones.md)."""
    held = {}
    if pool.handout_check is not None or counts[VMState.QUARANTINE]:
        held["quarantine"] = counts[VMState.QUARANTINE]
    if pool.suspended or counts[VMState.SUSPENDED]:
        held["suspended"] = counts[VMState.SUSPENDED]
    return held

"""The figures the dashboard draws: pool levels, their history, and who has what running."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vmpooler.config import Settings
from vmpooler.errors import BadRequest, NotFound
from vmpooler.limits import pool_sizes
from vmpooler.states import VMState
from vmpooler.store.history import Point
from vmpooler.store.redis import Store

#: range name -> (seconds back, resolution)
RANGES = {
    "1h": (3600, "1m"),
    "6h": (6 * 3600, "1m"),
    "1d": (24 * 3600, "1m"),
    "7d": (7 * 24 * 3600, "1h"),
    "30d": (30 * 24 * 3600, "1h"),
    "90d": (90 * 24 * 3600, "1h"),
}
SUMMED = ("ready", "running", "pending", "size", "checkouts", "refused", "failures", "boots", "clones")


def overall(series: dict[str, list[Point]], every_pool: list[Point]) -> list[Point]:
    """The all-pools series: ``every_pool``'s points as the manager recorded them (the pools' sums and
    the timings of all their boots and clones together), and before its first point every pool's
    points added up per timestamp, without boot percentiles or clone time (null: a mix of the pools'
    own percentiles is not the percentile of all boots)."""
    by_time: dict[int, Point] = {}
    for points in series.values():
        for p in points:
            untimed = {"t": p["t"], **dict.fromkeys(SUMMED, 0), **dict.fromkeys(("boot_p50", "boot_p90", "clone_avg"))}
            total = by_time.setdefault(p["t"], untimed)
            for key in SUMMED:
                total[key] = round(total[key] + p.get(key, 0), 1)
    by_time |= {p["t"]: p for p in every_pool if "ready" in p}
    return [by_time[t] for t in sorted(by_time)]


class DashboardService:
    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    async def history(self, pool: str | None, range_name: str, only_overall: bool = False) -> dict[str, Any]:
        """Each pool's points and their sum (``overall``); ``only_overall`` leaves the per-pool series
        out, which is what a chart of all pools needs (500 pools x 1 day is 720,000 points)."""
        if range_name not in RANGES:
            raise BadRequest(f"range must be one of {', '.join(RANGES)}, got {range_name!r}")
        if pool is not None and self.settings.pool(pool) is None:
            raise NotFound(f"unknown pool {pool!r}")
        seconds, resolution = RANGES[range_name]
        since = self.clock() - seconds
        if pool:  # one pool: its own series is its "overall", timings included
            series = await self.store.history.points_of([pool], resolution, since)
            body: dict[str, Any] = {"range": range_name, "resolution": resolution, "overall": series[pool]}
            return body | ({} if only_overall else {"pools": series})
        every_pool = [p for p in await self.store.history.points(None, resolution, since) if "ready" in p]
        # the pools' own points are read only where they are wanted: each pool's, or the all-pools
        # series' past before the manager began to record it (1,000 pools x 60 minutes is 60,000 points)
        until = None if not only_overall or not every_pool else every_pool[0]["t"] - 1
        series = await self.store.history.points_of([p.name for p in self.settings.pools], resolution, since, until)
        body = {"range": range_name, "resolution": resolution, "overall": overall(series, every_pool)}
        if not only_overall:
            body["pools"] = series
        return body

    async def pool_stats(self, with_history: bool) -> dict[str, Any]:
        """The original dashboard's ``/dashboard/stats/vmpooler/pool``: ``{pool: {size, ready[, history]}}``."""
        names = [p.name for p in self.settings.pools]
        counts = await self.store.counts(names)
        sizes = pool_sizes(self.settings, await self.store.overrides.all("size"))
        series = await self.store.history.points_of(names, "1m", self.clock() - 3600) if with_history else {}
        out: dict[str, Any] = {}
        for pool in self.settings.pools:
            entry: dict[str, Any] = {
                "size": sizes[pool.name],
                "ready": counts[pool.name][VMState.READY],
                "running": counts[pool.name][VMState.RUNNING],
                "pending": counts[pool.name][VMState.PENDING],
            }
            if with_history:
                entry["history"] = [p["ready"] for p in series[pool.name]]
            out[pool.name] = entry
        return out

    async def running_stats(self, with_history: bool) -> dict[str, Any]:
        """The original's ``/dashboard/stats/vmpooler/running``: running VMs per platform (the pool
        name before its first '-')."""
        names = [p.name for p in self.settings.pools]
        counts = await self.store.counts(names)
        series = await self.store.history.points_of(names, "1m", self.clock() - 3600) if with_history else {}
        out: dict[str, Any] = {}
        for name in names:
            major = name.split("-", 1)[0]
            entry = out.setdefault(major, {"running": 0, **({"history": []} if with_history else {})})
            entry["running"] += counts[name][VMState.RUNNING]
            if with_history:
                history: list[int] = entry["history"]
                for i, point in enumerate(series[name]):
                    if i < len(history):
                        history[i] += point["running"]
                    else:
                        history.append(point["running"])
        return out

    async def users(self) -> dict[str, dict[str, int]]:
        """Running VMs per user (``token:user``; 'anonymous' without a token) and pool."""
        running = await self.store.members_of([p.name for p in self.settings.pools], VMState.RUNNING)
        names = [(pool, name) for pool, members in running.items() for name in sorted(members)]
        out: dict[str, dict[str, int]] = {}
        for (pool, _), record in zip(names, await self.store.records([n for _, n in names]), strict=True):
            user = record.user or "anonymous"
            out.setdefault(user, {})
            out[user][pool] = out[user].get(pool, 0) + 1
        return out

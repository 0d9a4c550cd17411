"""Writes each pool's history point every minute, and folds each hour's minutes into an hour point."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

from vmpooler.config import Settings
from vmpooler.limits import pool_sizes
from vmpooler.manager.cadence import every
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.history import Point, minute_of
from vmpooler.store.redis import Store


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


#: what the all-pools point adds up over the pools (its timings are computed from every pool's events)
SUMMED = ("ready", "running", "pending", "size", "checkouts", "refused", "failures")


def timings(boots: list[float], clones: int, clone_ms: int) -> Point:
    """The timing fields of a minute point: boot percentiles, clone count and mean clone seconds."""
    return {
        "boots": len(boots),
        "boot_p50": percentile(boots, 0.5),
        "boot_p90": percentile(boots, 0.9),
        "clones": clones,
        "clone_avg": round(clone_ms / clones / 1000, 2) if clones else 0.0,
    }


def fold(points: list[Point], start: int) -> Point:
    """One hour point from its minute points: mean levels, summed events, boot p50 mean and p90 max,
    the clone mean weighted by clones."""

    def mean(key: str) -> float:
        return round(statistics.fmean(p.get(key, 0) for p in points), 1)

    timed = [p for p in points if p.get("boots")]
    clones = sum(p.get("clones", 0) for p in points)
    clone_seconds = sum(p.get("clones", 0) * p.get("clone_avg", 0.0) for p in points)
    return {
        "t": start,
        "ready": mean("ready"),
        "running": mean("running"),
        "pending": mean("pending"),
        "size": mean("size"),
        "checkouts": sum(p.get("checkouts", 0) for p in points),
        "refused": sum(p.get("refused", 0) for p in points),
        "failures": sum(p.get("failures", 0) for p in points),
        "boots": sum(p.get("boots", 0) for p in points),
        "boot_p50": round(statistics.fmean(p["boot_p50"] for p in timed), 2) if timed else 0.0,
        "boot_p90": max((p["boot_p90"] for p in timed), default=0.0),
        "clones": clones,
        "clone_avg": round(clone_seconds / clones, 2) if clones else 0.0,
    }


def seconds_to_next_sample(now: float) -> float:
    """A couple of seconds past the next minute, so the minute's events are all in."""
    return 60 - (now % 60) + 2


class HistorySampler:
    """``run_once(now)`` writes the points of the minute before ``now`` (once, whichever manager);
    ``run`` does so on the schedule ``wait(now)`` gives (seconds until the next sample)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], float] = seconds_to_next_sample,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.wait = wait

    async def run_once(self, now: float | None = None) -> bool:
        now = self.clock() if now is None else now
        minute = minute_of(now) - 60
        if not await self.store.history.claim_minute(minute):
            return False
        pools = [p.name for p in self.settings.pools]
        counts = await self.store.counts(pools)
        sizes = pool_sizes(self.settings, await self.store.overrides.all("size"))
        every_boot: list[float] = []
        every_clone = [0, 0]  # count, milliseconds
        totals: Point = dict.fromkeys(SUMMED, 0)
        taken = await self.store.history.take_minutes(pools, minute)
        points: list[tuple[str | None, Point]] = []
        for pool in self.settings.pools:
            events, boots = taken[pool.name]
            level = counts[pool.name]
            point: Point = {
                "t": minute,
                "ready": level[VMState.READY],
                "running": level[VMState.RUNNING],
                "pending": level[VMState.PENDING],
                "size": sizes[pool.name],
                "checkouts": events.get("checkouts", 0),
                "refused": events.get("refused", 0),
                "failures": events.get("failures", 0),
                **timings(boots, events.get("clones", 0), events.get("clone_ms", 0)),
            }
            every_boot += boots
            every_clone[0] += events.get("clones", 0)
            every_clone[1] += events.get("clone_ms", 0)
            for key in SUMMED:
                totals[key] += point[key]
            points.append((pool.name, point))
        # the all-pools point: the pools' sums (so a chart of all pools reads one series, not 1,000),
        # and the percentiles of all their boots together, which no mix of per-pool percentiles gives
        points.append((None, {"t": minute, **totals, **timings(every_boot, *every_clone)}))
        await self.store.history.add_many("1m", points)
        for pool_name, _ in points:
            await self._fold_hour(pool_name, minute)
        return True

    async def _fold_hour(self, pool: str | None, minute: int) -> None:
        """After an hour's last minute, its one-hour point (``pool`` None: the all-pools series)."""
        if (minute + 60) % 3600 != 0:
            return
        hour = minute + 60 - 3600
        minutes = [p for p in await self.store.history.points(pool, "1m", hour) if p["t"] < hour + 3600]
        if minutes:
            await self.store.history.add(pool, "1h", fold(minutes, hour))

    async def run(self, stop: asyncio.Event, metrics: Metrics) -> None:
        def until_next_sample() -> float:
            return self.wait(self.clock())

        await every(
            until_next_sample, stop, self.run_once, name="history", metrics=metrics, first_after=until_next_sample()
        )

"""Clone and boot durations and tag counts per day: what ``/status`` and ``/summary`` report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from redis.asyncio.client import Pipeline

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.scripts import load, queue

KINDS = ("boot", "clone")
#: per-day figures are kept this long (the original keeps them forever; a year answers any summary)
RETENTION_SECONDS = 400 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DayDurations:
    count: int = 0
    total: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0
    #: the same figures for each pool that had any that day
    pools: Mapping[str, DayDurations] = field(default_factory=dict)


def _record_call(kind: str, pool: str, vm: str, seconds: float, now: float) -> dict[str, list[Any]]:
    day = datetime.fromtimestamp(now, UTC).date()
    return {
        "keys": [_day_key(kind, day), keys.duration_totals(kind, day)],
        "args": [f"{pool}:{vm}", f"{seconds:.2f}", RETENTION_SECONDS],
    }


def _day_key(kind: str, day: date) -> str:
    return keys.boot_times(day) if kind == "boot" else keys.clone_times(day)


def _figures(values: list[float]) -> DayDurations:
    return DayDurations(len(values), sum(values), min(values), max(values)) if values else DayDurations()


def _from_aggregate(totals: Mapping[str, str]) -> DayDurations:
    """The aggregate hash: ``count``, ``total``, ``min``, ``max``, and each again as ``<field>:<pool>``."""
    per_pool: dict[str, dict[str, str]] = {}
    for name, value in totals.items():
        figure, _, pool = name.partition(":")
        if pool:
            per_pool.setdefault(pool, {})[figure] = value

    def read(fields: Mapping[str, str]) -> DayDurations:
        return DayDurations(
            int(fields.get("count", 0)),
            float(fields.get("total", 0)),
            float(fields.get("min", 0)),
            float(fields.get("max", 0)),
        )

    top = read(totals)
    return DayDurations(top.count, top.total, top.minimum, top.maximum, {p: read(f) for p, f in per_pool.items()})


class StatsStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._record = load(client, "record_duration")

    async def record(self, kind: str, pool: str, vm: str, seconds: float, now: float) -> None:
        async with translated():
            call = _record_call(kind, pool, vm, seconds, now)
            await self._record(keys=call["keys"], args=call["args"])

    def queue_record(
        self, pipe: Pipeline, kind: str, pool: str, vm: str, seconds: float, now: float
    ) -> Callable[[], Awaitable[None]]:
        """``record`` queued on ``pipe``; returns the fallback for ``scripts.settle``."""
        call = _record_call(kind, pool, vm, seconds, now)
        queue(pipe, self._record, call["keys"], call["args"])
        return lambda: self.record(kind, pool, vm, seconds, now)

    async def durations(self, kind: str, days: list[date]) -> list[DayDurations]:
        """One aggregate per day, overall and per pool. A day the aggregate does not cover whole (written
        by the original vmpooler, or by both during a switch over) is summed from the per-VM hash once."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.duration_totals(kind, day))
                pipe.hlen(_day_key(kind, day))
            found = await pipe.execute()
        out = []
        for i, day in enumerate(days):
            totals, recorded = found[2 * i], int(found[2 * i + 1])
            if totals and int(totals.get("count", 0)) == recorded and any(":" in name for name in totals):
                out.append(_from_aggregate(totals))
            else:
                out.append(await self._from_raw(kind, day))
        return out

    async def _from_raw(self, kind: str, day: date) -> DayDurations:
        async with translated():
            raw = await self.client.hgetall(_day_key(kind, day))
        by_pool: dict[str, list[float]] = {}
        for name, value in raw.items():
            try:
                seconds = float(value)
            except ValueError:
                continue
            # the original's field is "<pool>:<vm>"; one without a pool is counted as "unknown" (as it does)
            pool = str(name).split(":")[0] if ":" in str(name) else "unknown"
            by_pool.setdefault(pool, []).append(seconds)
        everything = [seconds for values in by_pool.values() for seconds in values]
        top = _figures(everything)
        return DayDurations(
            top.count, top.total, top.minimum, top.maximum, {p: _figures(v) for p, v in by_pool.items()}
        )

    async def tags(self, days: list[date]) -> list[dict[str, str]]:
        """Each day's ``"<vm>:<tag>" -> value`` hash."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.tags(day))
            return [{str(k): str(v) for k, v in found.items()} for found in await pipe.execute()]

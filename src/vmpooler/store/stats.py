"""Clone and boot durations and tag counts per day: what ``/status`` and ``/summary`` report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.scripts import load

KINDS = ("boot", "clone")
#: per-day figures are kept this long (the original keeps them forever; a year answers any summary)
RETENTION_SECONDS = 400 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DayDurations:
    count: int = 0
    total: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0


def _day_key(kind: str, day: date) -> str:
    return keys.boot_times(day) if kind == "boot" else keys.clone_times(day)


class StatsStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._record = load(client, "record_duration")

    async def record(self, kind: str, pool: str, vm: str, seconds: float, now: float) -> None:
        day = datetime.fromtimestamp(now, UTC).date()
        async with translated():
            await self._record(
                keys=[_day_key(kind, day), keys.duration_totals(kind, day)],
                args=[f"{pool}:{vm}", f"{seconds:.2f}", RETENTION_SECONDS],
            )

    async def durations(self, kind: str, days: list[date]) -> list[DayDurations]:
        """One aggregate per day; a day written by the original vmpooler (no aggregate) is summed once."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.duration_totals(kind, day))
            found = await pipe.execute()
        out = []
        for day, totals in zip(days, found, strict=True):
            if totals:
                out.append(
                    DayDurations(
                        int(totals.get("count", 0)),
                        float(totals.get("total", 0)),
                        float(totals.get("min", 0)),
                        float(totals.get("max", 0)),
                    )
                )
            else:
                out.append(await self._from_raw(kind, day))
        return out

    async def _from_raw(self, kind: str, day: date) -> DayDurations:
        async with translated():
            values = []
            for value in await self.client.hvals(_day_key(kind, day)):
                try:
                    values.append(float(value))
                except ValueError:
                    continue
        if not values:
            return DayDurations()
        return DayDurations(len(values), sum(values), min(values), max(values))

    async def tags(self, days: list[date]) -> list[dict[str, str]]:
        """Each day's ``"<vm>:<tag>" -> value`` hash."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.tags(day))
            return [{str(k): str(v) for k, v in found.items()} for found in await pipe.execute()]

"""``/summary``: clone and boot durations and tag counts per day and over a date range."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vmpooler.errors import BadRequest, NotFound
from vmpooler.store.redis import Store
from vmpooler.store.stats import DayDurations

SECTIONS = ("boot", "clone", "tag")
MAX_DAYS = 366


def _parse_day(value: str | None, today: date) -> date:
    if value is None or value == "":
        return today
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad(value)
    except ValueError:
        return _bad(value)


def _bad(value: str) -> date:
    raise BadRequest(f"Invalid date format '{value}', must match YYYY-MM-DD.")


def _durations(day: DayDurations) -> dict[str, Any]:
    return {
        "average": round(day.total / day.count, 2) if day.count else 0,
        "min": round(day.minimum, 2),
        "max": round(day.maximum, 2),
        "total": round(day.total, 2),
    }


def _day_figures(day: DayDurations) -> dict[str, Any]:
    """One day, overall and per pool (``duration.pool.<pool>``, ``count.pool.<pool>``) as the original."""
    pools = sorted(day.pools)
    return {
        "duration": {**_durations(day), "pool": {p: _durations(day.pools[p]) for p in pools}},
        "count": {"total": day.count, "pool": {p: {"total": day.pools[p].count} for p in pools}},
    }


def _combine(days: list[DayDurations]) -> DayDurations:
    busy = [d for d in days if d.count]
    if not busy:
        return DayDurations()
    return DayDurations(
        sum(d.count for d in busy),
        sum(d.total for d in busy),
        min(d.minimum for d in busy),
        max(d.maximum for d in busy),
    )


def _overall(days: list[DayDurations]) -> dict[str, Any]:
    counts = [d.count for d in days]
    total = _combine(days)
    pools = sorted({pool for day in days for pool in day.pools})
    per_pool = {p: _combine([day.pools[p] for day in days if p in day.pools]) for p in pools}
    return {
        "duration": {**_durations(total), "pool": {p: _durations(figures) for p, figures in per_pool.items()}},
        "count": {
            "average": round(total.count / len(days), 2) if days else 0,
            "min": min(counts) if counts else 0,
            "max": max(counts) if counts else 0,
            "total": total.count,
            "pool": {p: {"total": figures.count} for p, figures in per_pool.items()},
        },
    }


def _tag_counts(raw: dict[str, str]) -> dict[str, dict[str, int]]:
    """``{"<vm>:<tag>": value}`` -> ``{tag: {value: how many VMs, "total": how many VMs}}``."""
    counts: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        _, _, tag = field.partition(":")
        per_value = counts.setdefault(tag, {})
        per_value[value] = per_value.get(value, 0) + 1
        per_value["total"] = per_value.get("total", 0) + 1
    return counts


class SummaryService:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def days(self, start: str | None, end: str | None) -> list[date]:
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        first, last = _parse_day(start, today), _parse_day(end, today)
        if last < first:
            raise BadRequest("Date range is invalid, 'to' cannot come before 'from'.")
        if first > today:
            raise BadRequest("Date range is invalid, 'from' must be in the past.")
        if (last - first).days >= MAX_DAYS:
            raise BadRequest(f"Date range is too long: ask for at most {MAX_DAYS} days at a time.")
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    async def summary(
        self, start: str | None, end: str | None, section: str | None = None, key: str | None = None
    ) -> dict[str, Any]:
        if section is not None and section not in SECTIONS:
            raise NotFound(f"no summary section {section!r}; use one of {', '.join(SECTIONS)}")
        days = self.days(start, end)
        boot = await self.store.stats.durations("boot", days)
        clone = await self.store.stats.durations("clone", days)
        tags = [_tag_counts(raw) for raw in await self.store.stats.tags(days)]
        overall_tags: dict[str, dict[str, int]] = {}
        for day_tags in tags:
            for tag, values in day_tags.items():
                for value, n in values.items():
                    overall_tags.setdefault(tag, {})[value] = overall_tags.get(tag, {}).get(value, 0) + n
        result: dict[str, Any] = {"boot": _overall(boot), "clone": _overall(clone), "tag": overall_tags}
        daily: list[dict[str, Any]] = [
            {"date": d.isoformat(), "boot": _day_figures(b), "clone": _day_figures(c), "tag": t}
            for d, b, c, t in zip(days, boot, clone, tags, strict=True)
        ]
        if section is None:
            return {**result, "daily": daily}
        return {
            section: self._pick(result[section], key, section),
            "daily": [{"date": d["date"], section: self._pick(d[section], key, section, strict=False)} for d in daily],
        }

    @staticmethod
    def _pick(value: dict[str, Any], key: str | None, section: str, strict: bool = True) -> Any:
        if key is None:
            return value
        if key not in value:
            if strict and section != "tag":
                raise NotFound(f"no {key!r} in the {section} summary; use one of {', '.join(value)}")
            return {}
        return {key: value[key]}

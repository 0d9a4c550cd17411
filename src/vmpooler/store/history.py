"""Per-pool time series kept in Redis, so the dashboard has history without Graphite.

Each minute one point per pool: levels (ready, running, pending, size), checkouts, checkouts refused
because the pool was empty, clone failures, clones and their mean time in that minute, and boot-time
percentiles; and one all-pools point with the percentiles of every pool's boots together. One-minute
points are kept a day; every hour they are folded into one-hour points kept 90 days.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated

MINUTE_RETENTION = 24 * 3600
HOUR_RETENTION = 90 * 24 * 3600

Point = dict[str, Any]


def minute_of(now: float) -> int:
    return int(now // 60 * 60)


def count_field(event: str, now: float) -> str:
    """The field of ``keys.history_counts`` counting ``event`` (checkouts, failures) in now's minute;
    the checkout script and the clone-failure counter add to it."""
    return f"{event}:{minute_of(now)}"


class HistoryStore:
    def __init__(self, client: Redis) -> None:
        self.client = client

    async def boot(self, pool: str, seconds: float, now: float) -> None:
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            self.queue_boot(pipe, pool, seconds, now)
            await pipe.execute()

    @staticmethod
    def queue_boot(pipe: Pipeline, pool: str, seconds: float, now: float) -> None:
        """A boot time in now's minute, queued on ``pipe``."""
        minute = minute_of(now)
        pipe.rpush(keys.history_boots(pool, minute), f"{seconds:.2f}")
        pipe.expire(keys.history_boots(pool, minute), 7200)

    async def clone(self, pool: str, seconds: float, now: float) -> None:
        """Counts a finished clone and its duration (in ms: the counts are integers) in now's minute."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            self.queue_clone(pipe, pool, seconds, now)
            await pipe.execute()

    @staticmethod
    def queue_clone(pipe: Pipeline, pool: str, seconds: float, now: float) -> None:
        """``clone`` queued on ``pipe`` (its two counts must go in one MULTI: make ``pipe`` a transaction)."""
        pipe.hincrby(keys.history_counts(pool), count_field("clones", now), 1)
        pipe.hincrby(keys.history_counts(pool), count_field("clone_ms", now), round(seconds * 1000))

    async def claim_minute(self, minute: int) -> bool:
        """True for the one manager that writes the points of ``minute``."""
        async with translated():
            return bool(await self.client.set(keys.history_lock(minute), "1", nx=True, ex=600))

    async def take_minute(self, pool: str, minute: int) -> tuple[dict[str, int], list[float]]:
        """The counts and boot times of a finished minute, removed from the waiting area."""
        return (await self.take_minutes([pool], minute))[pool]

    async def take_minutes(self, pools: Sequence[str], minute: int) -> dict[str, tuple[dict[str, int], list[float]]]:
        """``take_minute`` of every pool, in two round trips whatever their number (the sampler runs
        each minute over every pool: one round trip per pool per step made its minute cost O(pools))."""
        if not pools:
            return {}
        async with translated():
            async with self.client.pipeline(transaction=False) as pipe:
                for pool in pools:
                    pipe.hgetall(keys.history_counts(pool))
                every_counts = await pipe.execute()
            boots_at = []  # where each pool's LRANGE reply is among the replies
            queued = 0
            async with self.client.pipeline(transaction=True) as pipe:
                for pool, counts in zip(pools, every_counts, strict=True):
                    stale = [f for f in counts if int(str(f).rsplit(":", 1)[1]) <= minute]
                    if stale:
                        pipe.hdel(keys.history_counts(pool), *stale)
                        queued += 1
                    boots_at.append(queued)
                    pipe.lrange(keys.history_boots(pool, minute), 0, -1)
                    pipe.delete(keys.history_boots(pool, minute))
                    queued += 2
                replies = await pipe.execute()
        taken: dict[str, tuple[dict[str, int], list[float]]] = {}
        for pool, counts, at in zip(pools, every_counts, boots_at, strict=True):
            mine = {str(f).split(":", 1)[0]: int(v) for f, v in counts.items() if str(f).endswith(f":{minute}")}
            taken[pool] = (mine, [float(b) for b in replies[at]])
        return taken

    async def unsampled(self, pools: Sequence[str], event: str, now: float) -> dict[str, int]:
        """How many ``event``s each pool counted that are in no point yet: now's minute, and the one
        before until the manager takes it (a couple of seconds into each minute)."""
        fields = [count_field(event, now - 60), count_field(event, now)]
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.hmget(keys.history_counts(pool), fields)
            found = await pipe.execute() if pools else []
        return {pool: sum(int(n or 0) for n in counts) for pool, counts in zip(pools, found, strict=True)}

    async def add(self, pool: str | None, resolution: str, point: Point) -> None:
        """Stores ``point`` in ``pool``'s series, or in the all-pools one when ``pool`` is None."""
        await self.add_many(resolution, [(pool, point)])

    async def add_many(self, resolution: str, points: Sequence[tuple[str | None, Point]]) -> None:
        """``add`` of each (pool, point), all in one round trip."""
        retention = MINUTE_RETENTION if resolution == "1m" else HOUR_RETENTION
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            for pool, point in points:
                key = keys.history(pool, resolution) if pool is not None else keys.history_all(resolution)
                pipe.zremrangebyscore(key, point["t"], point["t"])  # a re-run of the same minute replaces it
                pipe.zadd(key, {json.dumps(point, separators=(",", ":")): point["t"]})
                pipe.zremrangebyscore(key, "-inf", point["t"] - retention)
            await pipe.execute()

    async def points(self, pool: str | None, resolution: str, since: float) -> list[Point]:
        """``pool``'s points since ``since``, or the all-pools series' when ``pool`` is None."""
        key = keys.history(pool, resolution) if pool is not None else keys.history_all(resolution)
        async with translated():
            found = await self.client.zrangebyscore(key, since, "+inf")
        return _points(found)

    async def points_of(
        self, pools: Sequence[str], resolution: str, since: float, until: float | None = None
    ) -> dict[str, list[Point]]:
        """Each pool's points from ``since`` up to ``until`` (included; None: the latest)."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.zrangebyscore(keys.history(pool, resolution), since, "+inf" if until is None else until)
            found = await pipe.execute()
        return {pool: _points(points) for pool, points in zip(pools, found, strict=True)}


#: the largest magnitude a stored number is read with: a JSON reply can carry it (orjson refuses
#: integers past 64 bits) and JavaScript reads it exactly
_NUMBER_BOUND = 2**53


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:  # also spares int() the 4,300-digit limit
        return -_NUMBER_BOUND if text.startswith("-") else _NUMBER_BOUND
    return max(-_NUMBER_BOUND, min(int(text), _NUMBER_BOUND))


def _points(found: Sequence[object]) -> list[Point]:
    """Stored points read defensively: one that is not a JSON object with a time is skipped, and
    numbers are clamped, so a corrupted point (by hand, by an older version) cannot fail a reply."""
    points = []
    for raw in found:
        try:
            point = json.loads(str(raw), parse_int=_bounded_int, parse_constant=lambda _: None)
        except (ValueError, RecursionError):
            continue
        if isinstance(point, dict) and isinstance(point.get("t"), int):
            points.append(point)
    return points

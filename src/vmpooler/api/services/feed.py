"""The dashboard's one polled feed: levels, problems first, who holds what, on-demand requests in flight.

Compact on purpose (a pool is one array), and free of anything that changes by itself (no uptime,
no "seconds ago"), so an idle site gives the same bytes poll after poll and the route can answer
``304 Not Modified`` to the page's ``If-None-Match``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from vmpooler.api.services.status import StatusService
from vmpooler.config import Settings
from vmpooler.states import VMState
from vmpooler.store.history import Point
from vmpooler.store.ondemand import decode_items
from vmpooler.store.records import VMField, parse_time
from vmpooler.store.redis import Store

#: the order of each pool's array in ``pools``
COLUMNS = ("ready", "pending", "running", "size", "last_boot", "waiting")
#: minutes of history behind "failing": at least MIN_FAILURES failed clones, and more than
#: FAILURE_RATE of the clones that finished failed
RECENT_MINUTES = 15
MIN_FAILURES = 3
FAILURE_RATE = 0.25
MAX_USERS = 50
MAX_HOSTS = 20
MAX_REQUESTS = 50
CACHE_SECONDS = 1.0


def failing(points: list[Point]) -> dict[str, int] | None:
    """``{failures, clones}`` of a pool's recent points when they are over the failure rate, else None."""
    failures = sum(int(p.get("failures", 0)) for p in points)
    clones = sum(int(p.get("clones", 0)) for p in points)
    if failures >= MIN_FAILURES and failures > FAILURE_RATE * (failures + clones):
        return {"failures": failures, "clones": clones}
    return None


class DashboardFeed:
    """Builds ``/dashboard/feed``; the history-derived part is recomputed once a minute (when the
    manager writes new points), the rest at most once a second per selected pool."""

    def __init__(self, settings: Settings, store: Store, status: StatusService, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.store = store
        self.status = status
        self.clock = clock
        self._recent: tuple[int, dict[str, list[Point]]] = (-1, {})
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def feed(self, pool: str | None) -> dict[str, Any]:
        now = self.clock()
        cached = self._cache.get(pool or "")
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        report = await self.status.status()
        body = {
            "site": {"name": self.settings.config.site_name, "started": round(self.status.started_at)},
            **{key: report[key] for key in ("capacity", "queue", "clone", "boot")},
            "columns": COLUMNS,
            "pools": {name: self._levels(entry) for name, entry in report["pools"].items()},
            "aliases": {p.name: p.alias for p in self.settings.pools if p.alias},
            "problems": await self._problems(report, now),
            "holders": await self.holders(pool or [n for n, e in report["pools"].items() if e["running"]], now),
            "ondemand": await self.ondemand(),
            # autoscaled pools: the manager's target and how the last day met the wait target
            "autoscale": {
                name: {
                    "target": entry["autoscale"]["target"],
                    "wait": entry["autoscale"]["target_wait_p95_s"],
                    "attainment": entry["autoscale"]["slo_attainment_24h"],
                    "checkouts": entry["autoscale"]["checkouts_24h"],
                }
                for name, entry in report["pools"].items()
                if "autoscale" in entry
            },
        }
        self._cache[pool or ""] = (now, body)
        return body

    @staticmethod
    def _levels(entry: dict[str, Any]) -> list[Any]:
        booted = parse_time(entry.get("lastBoot") or None)
        levels = [entry["ready"], entry["pending"], entry["running"], entry["max"], booted and round(booted)]
        return [*levels, entry.get("queue", 0)]  # checkouts waiting their turn (docs/waiting.md)

    async def _recent_points(self, now: float) -> dict[str, list[Point]]:
        minute = int(now // 60)
        if self._recent[0] != minute:
            names = [p.name for p in self.settings.pools]
            since = now - RECENT_MINUTES * 60
            self._recent = (minute, await self.store.history.points_of(names, "1m", since))
        return self._recent[1]

    async def _problems(self, report: dict[str, Any], now: float) -> dict[str, Any]:
        """Pools grouped by what is wrong: degraded (with the reason, recent failures, next probe),
        empty, failing (over the failure rate) and filling (below their size, some ready)."""
        pools: dict[str, Any] = report["pools"]
        recent = await self._recent_points(now)
        degraded = {name: dict(entry["degraded"]) for name, entry in pools.items() if "degraded" in entry}
        current = await self.store.history.unsampled(sorted(degraded), "failures", now)
        for name, health in degraded.items():
            points = recent.get(name, [])
            health["failures"] = sum(int(p.get("failures", 0)) for p in points) + current[name]
        rates = {name: found for name, points in recent.items() if (found := failing(points))}
        return {
            "minutes": RECENT_MINUTES,
            "degraded": degraded,
            "empty": sorted(n for n, e in pools.items() if e["ready"] == 0 and e["max"] > 0 and n not in degraded),
            "failing": {name: rates[name] for name in sorted(rates) if name not in degraded},
            "filling": sorted(n for n, e in pools.items() if 0 < e["ready"] < e["max"]),
        }

    async def holders(self, pool: str | list[str], now: float) -> dict[str, Any]:
        """Who holds running VMs of ``pool`` (or of the pools listed: all those with running VMs): per
        user the count, the pools and the hostnames with their expiry (epoch seconds; None for an
        unlimited lifetime)."""
        names = [pool] if isinstance(pool, str) else pool
        running = await self.store.members_of(names, VMState.RUNNING)
        pairs = [(where, name) for where, members in running.items() for name in sorted(members)]
        records = await self.store.records([name for _, name in pairs])
        default_lifetime = self.settings.config.vm_lifetime
        users: dict[str, dict[str, Any]] = {}
        for (where, name), record in zip(pairs, records, strict=True):
            held = users.setdefault(record.user or "anonymous", {"vms": 0, "pools": {}, "hosts": []})
            held["vms"] += 1
            held["pools"][where] = held["pools"].get(where, 0) + 1
            ends = record.lifetime_end(default_lifetime)
            held["hosts"].append([name, where, round(ends) if ends != math.inf else None])
        ordered = sorted(users.items(), key=lambda kv: (-kv[1]["vms"], kv[0]))
        listed = []
        for user, entry in ordered[:MAX_USERS]:
            hosts = sorted(entry["hosts"], key=lambda h: (h[2] is None, h[2] or 0, h[0]))
            listed.append({"user": user, **entry, "hosts": hosts[:MAX_HOSTS], "more": max(0, len(hosts) - MAX_HOSTS)})
        scope = pool if isinstance(pool, str) else None
        return {"pool": scope, "users": listed, "more": max(0, len(ordered) - MAX_USERS)}

    async def ondemand(self) -> list[dict[str, Any]]:
        """Open on-demand requests, oldest first: each item's pool, count and VMs delivered so far."""
        out = []
        for request_id, record in await self.store.ondemand.in_flight(MAX_REQUESTS):
            items = decode_items(record.get("requested", ""))
            delivered = await self.store.ondemand.delivered(request_id, items)
            created = parse_time(record.get("created"))
            out.append(
                {
                    "id": request_id,
                    # a request records its owner in the fields a VM's record does
                    "user": record.get(VMField.USER) or "anonymous",
                    "created": created and round(created),
                    "items": [[pool, count, len(got)] for (_, pool, count), got in zip(items, delivered, strict=True)],
                }
            )
        return out

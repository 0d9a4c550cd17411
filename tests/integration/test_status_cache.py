"""Concurrent /status requests share one build of the report instead of each reading every pool."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from tests.conftest import build_settings
from vmpooler.api.services.status import StatusService
from vmpooler.store.redis import Store


async def commands_after_reset(store: Store, work: Awaitable[object]) -> int:
    """Redis commands ``work`` sent (CONFIG RESETSTAT counts itself once, on both sides alike)."""
    await store.client.config_resetstat()
    await work
    stats = await store.client.info("commandstats")
    return sum(int(v.get("calls", 0)) for k, v in stats.items() if k.startswith("cmdstat_"))


async def test_a_burst_of_requests_builds_the_report_once(store: Store) -> None:
    settings = build_settings([{"name": f"p{i}", "template": "t", "size": 1} for i in range(50)])
    service = StatusService(settings, store)
    await service.status()  # scripts loaded, connections open

    service.invalidate()
    one = await commands_after_reset(store, service.status())
    service.invalidate()
    reports: list[dict[str, object]] = []

    async def burst() -> None:
        reports.extend(await asyncio.gather(*(service.status() for _ in range(64))))

    many = await commands_after_reset(store, burst())

    assert len(reports) == 64 and all(r["pools"] == reports[0]["pools"] for r in reports)
    assert many <= one  # 64 requests, one build's worth of Redis commands


async def test_a_change_made_here_is_seen_by_the_next_request(store: Store) -> None:
    settings = build_settings([{"name": "p", "template": "t", "size": 1}])
    service = StatusService(settings, store)
    assert (await service.status())["pools"]["p"]["ready"] == 0
    await store.create_pending("p", "vm1", {"clone": "2026-11-25 10:00:00 +0000"})
    assert await store.mark_ready("p", "vm1", 1.0, 1.0)
    assert (await service.status())["pools"]["p"]["ready"] == 0  # cached for a second
    service.invalidate()
    assert (await service.status())["pools"]["p"]["ready"] == 1

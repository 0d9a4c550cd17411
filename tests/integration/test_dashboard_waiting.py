"""The dashboard shows each pool's checkouts waiting their turn (docs/waiting.md) beside the pool's name."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.support.dashboard import WAIT_MS, Dashboard, dashboards, run, site_settings, system_chromium
from tests.support.servers import ApiThread
from vmpooler.store.redis import Store
from vmpooler.store.waiting import WaitTicket


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with system_chromium() as launched:
        yield launched


@pytest.fixture
def open_dashboard(browser: Browser) -> Iterator[Callable[..., Dashboard]]:
    with dashboards(browser) as open_:
        yield open_


def test_a_pools_waiting_checkouts_are_shown_and_go_when_served(
    redis_port: int, open_dashboard: Callable[..., Dashboard]
) -> None:
    settings = site_settings([{"name": "deb", "template": "t", "size": 2}, {"name": "win", "template": "t", "size": 1}])
    with ApiThread(settings, redis_port) as api:
        tickets = [WaitTicket(f"w{n}", "deb", f"owner{n}", "", 1.0, 1) for n in range(3)]

        async def queue(store: Store) -> None:
            now = time.time()
            for ticket in tickets:  # as a waiting API process would, with a heartbeat a minute long
                assert await store.queues.join(ticket, now, now + 60, 100)

        run(redis_port, queue)
        board = open_dashboard(api.url)
        expect(board.row("deb").locator(".flag")).to_have_text("3 waiting", timeout=WAIT_MS)
        expect(board.row("deb").locator(".flag")).to_have_attribute("data-kind", "waiting")
        expect(board.row("win").locator(".flag")).to_be_empty()

        async def leave(store: Store) -> None:
            for ticket in tickets:
                await store.queues.leave(ticket)

        run(redis_port, leave)
        expect(board.row("deb").locator(".flag")).to_be_empty(timeout=WAIT_MS)
        assert httpx.get(f"{api.url}/api/v3/vm/deb/queue").json()["waiting"] == 0
        assert board.problems.seen == []

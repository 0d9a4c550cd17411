"""What the dashboard's browser tests share: a site's settings, the store from a worker thread, and one page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import Problems, chromium, chromium_path
from tests.support.servers import make_store
from vmpooler.config import Settings, parse_settings
from vmpooler.store.redis import Store

T = TypeVar("T")
REFRESH_MS = 300
WAIT_MS = 5000


def site_settings(pools: list[dict[str, Any]], site_name: str = "Test lab", auth: bool = False) -> Settings:
    raw: dict[str, Any] = {"pools": pools, "config": {"site_name": site_name, "check_loop_delay_min": 0.05}}
    if auth:
        raw["auth"] = {"provider": "dummy"}
    settings, _ = parse_settings(raw, env={})
    return settings


def run(redis_port: int, work: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    """Runs ``work(store)`` to the end on an event loop of its own thread: Playwright's sync API keeps
    its own loop marked running in the test's thread."""

    async def main() -> T:
        store = make_store(redis_port)
        try:
            return await work(store)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, main()).result()


def history_point(t: int, **values: float) -> dict[str, Any]:
    point: dict[str, Any] = {"t": t, "ready": 0, "running": 0, "pending": 0, "size": 0, "checkouts": 0}
    point |= {"failures": 0, "boots": 0, "boot_p50": 0.0, "boot_p90": 0.0}
    return point | values


@contextmanager
def system_chromium() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.fail("no chromium: scripts/ensure-system-deps.sh installs Debian's")
    with chromium(path) as launched:
        yield launched


class Dashboard:
    """One browser page on the dashboard, with what went wrong on it."""

    def __init__(self, page: Page, problems: Problems, api: str) -> None:
        self.page = page
        self.problems = problems
        self.api = api

    def row(self, pool: str) -> Locator:
        return self.page.locator(f'.pool-row[data-pool="{pool}"]')

    def problem(self, pool: str) -> Locator:
        return self.page.locator(f'.problem[data-pool="{pool}"]')

    def visible_rows(self) -> Locator:
        return self.page.locator("#pool-rows .pool-row:visible")

    def expect_figures(self, pool: str, ready: int, size: int, pending: int = 0, running: int = 0) -> None:
        row = self.row(pool)
        expect(row.locator(".cell-ready b")).to_have_text(str(ready), timeout=WAIT_MS)
        expect(row.locator(".cell-ready .of")).to_have_text(f" / {size}")
        expect(row.locator(".cell-pending .v")).to_have_text(str(pending), timeout=WAIT_MS)
        expect(row.locator(".cell-running .v")).to_have_text(str(running), timeout=WAIT_MS)
        bar = row.get_by_role("progressbar")
        expect(bar).to_have_attribute("aria-valuenow", str(min(ready, size)))
        expect(bar).to_have_attribute("aria-valuemax", str(size))


@contextmanager
def dashboards(browser: Browser) -> Iterator[Callable[..., Dashboard]]:
    """``open_(api_url, query, width, height, **context options)`` opens a page; all closed on the way out."""
    contexts = []

    def open_(api: str, query: str = "", width: int = 1280, height: int = 900, **options: Any) -> Dashboard:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        problems = Problems()
        page = problems.watch(context.new_page())
        refresh = "" if "refresh=" in query else f"refresh={REFRESH_MS}"
        page.goto(f"{api}/dashboard/?{refresh}{query}")
        return Dashboard(page, problems, api)

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()

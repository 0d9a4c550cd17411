"""The dashboard of a 1,000-pool site in Debian's chromium: the problems on the first screen (desktop
and phone), a degraded pool's marked row, and the bytes an idle tab costs an hour.

The site's state is written straight into Redis (no manager: nothing changes unless a test changes
it), so the page is what an operator sees of a quiet site with a few broken pools.
``VMPOOLER_SCREENSHOT=1`` makes ``test_first_screen_shows_the_problems`` write docs/dashboard*.png.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect

from tests.support.dashboard import WAIT_MS, Dashboard, dashboards, history_point, run, site_settings, system_chromium
from tests.support.servers import ApiThread
from vmpooler.config import Settings
from vmpooler.store.redis import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"
TEAMS = ["ci", "qa", "perf", "release", "infra", "sec", "mobile", "web", "data", "ml", "edge", "core", "ops", "db"]
TEAMS += ["docs", "sre", "build", "pkg", "kernel", "net", "store", "auth", "pay", "search", "ads", "mail", "chat"]
TEAMS += ["maps", "video", "games", "iot", "lab"]
SYSTEMS = ["debian-11", "debian-12", "ubuntu-2204", "ubuntu-2404", "rhel-8", "rhel-9", "centos-9", "fedora-40"]
SYSTEMS += ["win-2019", "win-2022", "macos-13", "macos-14", "sles-15", "alma-9", "rocky-9", "amzn-2023"]
NAMES = [f"{team}-{system}-{arch}" for team, system, arch in itertools.product(TEAMS, SYSTEMS, ("x86_64", "arm64"))]
POOLS = NAMES[:1000]
DEGRADED = {
    "qa-win-2022-x86_64": "clone failed: template 'templates/win-2022' not found on datastore ds-07",
    "release-macos-14-arm64": "provider unreachable: connection refused (vcenter-2.example.net:443)",
}
EMPTY = ["ci-debian-12-x86_64", "perf-rhel-9-arm64", "web-ubuntu-2404-x86_64"]
FILLING = ["ci-ubuntu-2404-x86_64", "data-rocky-9-x86_64", "ml-fedora-40-arm64", "edge-sles-15-x86_64"]
FAILING = "infra-centos-9-x86_64"
HOLDERS = {"alice": ["ci-debian-11-x86_64"] * 3, "ci-nightly": ["qa-ubuntu-2204-x86_64", "qa-rhel-8-x86_64"]}
SIZE = 2
PER_HOUR_BUDGET = 5_000_000


def site() -> Settings:
    pools: list[dict[str, Any]] = [{"name": name, "template": f"templates/{name}", "size": SIZE} for name in POOLS]
    pools[0]["alias"] = ["ci-debian"]
    return site_settings(pools, site_name="Build farm · eu-west", auth=True)


def seed(redis_port: int) -> None:
    """Every pool full but the problem ones; a few VMs checked out; one on-demand request waiting."""
    now = time.time()
    ready_of = {name: SIZE for name in POOLS} | dict.fromkeys([*DEGRADED, *EMPTY], 0) | dict.fromkeys(FILLING, 1)

    async def fill(store: Store, pool: str) -> None:
        for i in range(ready_of[pool] + len([p for held in HOLDERS.values() for p in held if p == pool])):
            name = f"{pool[:6]}{i}{abs(hash(pool)) % 10**8:08d}"
            assert await store.create_pending(pool, name, {"clone": "x"})
            if pool not in FILLING or i == 0:
                assert await store.mark_ready(pool, name, now - 600, 40.0)
            if pool in FILLING and i == 0:
                assert await store.create_pending(pool, f"{name}p", {"clone": "x"})

    async def work(store: Store) -> None:
        for start in range(0, len(POOLS), 100):
            await asyncio.gather(*(fill(store, pool) for pool in POOLS[start : start + 100]))
        minute = int(now // 60) * 60
        for pool, problem in DEGRADED.items():
            await store.health.degrade(pool, problem, now - 300, now + 95)
            # four failed clones in points already written, one in the minute still being counted
            await store.history.add(pool, "1m", history_point(minute - 120, failures=4, size=2))
            await store.ondemand.record_clone_failure(pool, problem, permanent=False, now=time.time())
        for back in range(1, 6):
            await store.history.add(FAILING, "1m", history_point(minute - back * 60, failures=2, clones=1, size=2))
        for user, pools in HOLDERS.items():
            for pool in pools:
                taken = await store.checkout([[pool]], now, {"token:user": user, "lifetime": "2"})
                assert isinstance(taken, list)
        record = {"requested": "ci-debian:ci-debian-12-x86_64:3", "created": "2026-01-01 00:00:00 +0000"}
        assert await store.ondemand.create("build-4711", record | {"token:user": "alice"}, now)

    run(redis_port, work)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with system_chromium() as launched:
        yield launched


@pytest.fixture
def open_dashboard(browser: Browser) -> Iterator[Callable[..., Dashboard]]:
    with dashboards(browser) as open_:
        yield open_


@pytest.fixture
def big_site(redis_port: int) -> Iterator[ApiThread]:
    settings = site()
    seed(redis_port)
    with ApiThread(settings, redis_port) as api:
        yield api


def on_first_screen(board: Dashboard, selector: str) -> None:
    """The element is inside the viewport as the page opens: no scrolling needed to see it."""
    box = board.page.locator(selector).first.bounding_box()
    viewport = board.page.viewport_size
    assert box is not None and viewport is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (selector, box, viewport)


@pytest.mark.parametrize(
    ("width", "height", "options"),
    [(1366, 768, {}), (390, 844, {"is_mobile": True, "has_touch": True})],
    ids=["desktop", "phone"],
)
def test_first_screen_shows_the_problems(
    big_site: ApiThread, open_dashboard: Callable[..., Dashboard], width: int, height: int, options: dict[str, Any]
) -> None:
    board = open_dashboard(big_site.url, width=width, height=height, **options)
    page = board.page
    rows = page.locator("#problem-rows .problem")
    expect(rows).to_have_count(len(DEGRADED) + len(EMPTY) + 1 + len(FILLING), timeout=WAIT_MS)
    # the first render, from the navigation's start (the page marks it when the first feed is drawn)
    first_render_ms = page.evaluate("performance.getEntriesByName('first-render')[0].startTime")
    print(f"first render at {width}x{height}: {first_render_ms:.0f} ms")
    kinds = page.locator("#problem-kinds")
    expect(kinds.locator('[data-kind="degraded"] b')).to_have_text("2")
    expect(kinds.locator('[data-kind="empty"] b')).to_have_text("3")
    expect(kinds.locator('[data-kind="failing"] b')).to_have_text("1")
    expect(kinds.locator('[data-kind="filling"] b')).to_have_text("4")
    expect(rows.first).to_have_attribute("data-kind", "degraded")  # the worst first
    expect(board.problem(FAILING)).to_contain_text("10 of 15 clones failed in 15 min")
    health = page.locator("#health")
    expect(health).to_have_text("2 degraded · 3 empty · 1 failing")
    for selector in ("#health", "#problem-kinds", *(f'.problem[data-pool="{p}"]' for p in [*DEGRADED, *EMPTY])):
        on_first_screen(board, selector)
    pill = health.bounding_box()
    assert pill is not None and pill["height"] < 40, pill  # one line, however many problems
    per_page = 50 if width > 720 else 20
    expect(page.locator("#pool-rows .pool-row")).to_have_count(per_page)  # a page, not 1,000 rows
    expect(page.locator("#page-info")).to_have_text(f"1\u2013{per_page} of 1,000")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # a guard against a page that has become slow, loose enough for a loaded CI machine; the figure
    # against the 1 s target comes from bench/dashboard.py
    assert first_render_ms < 5000, first_render_ms
    if os.environ.get("VMPOOLER_SCREENSHOT"):
        page.wait_for_timeout(500)  # bar transitions
        name = "dashboard.png" if width > 1000 else "dashboard-phone.png"
        page.screenshot(path=DOCS / name)
    assert board.problems.seen == []


def test_a_degraded_pool_has_its_own_marked_row(big_site: ApiThread, open_dashboard: Callable[..., Dashboard]) -> None:
    board = open_dashboard(big_site.url)
    page = board.page
    pool = "qa-win-2022-x86_64"
    problem = board.problem(pool)
    expect(problem).to_have_attribute("data-kind", "degraded", timeout=WAIT_MS)
    expect(problem.locator(".what")).to_have_text(DEGRADED[pool])
    expect(problem.locator(".when")).to_have_text(re.compile(r"^5 failed clones in 15 min · next probe in 1 min$"))
    page.locator("#health").click()  # the pill leads to the worst pool's row
    expect(page).to_have_url(re.compile(f"#problem-{pool}$"))
    # the list sorted problems first puts it on top, marked, with its reason
    row = board.row(pool)
    expect(row).to_have_attribute("data-level", "degraded")
    expect(row.locator(".flag")).to_have_text(f"degraded: {DEGRADED[pool]}")
    expect(page.locator("#pool-rows .pool-row").first).to_have_attribute("data-level", "degraded")

    problem.locator("button.name").click()  # who has what and the charts follow the pool
    expect(page.locator("#users-scope")).to_have_text(pool)
    expect(page.locator("#users-empty")).to_have_text(f"No VM of {pool} is checked out.")
    page.select_option("#history-pool", "ci-debian-11-x86_64")
    users = page.locator("#user-rows tr")
    expect(users).to_have_count(1)
    expect(users.first).to_contain_text("alice")
    expect(users.first.locator(".chip")).to_have_count(3)
    expect(users.first.locator(".chip").first).to_contain_text(re.compile(r"1 h 5\d min left"))
    # bars to scale, no cap: 3 running beside 2 slots take 3/5 of the bar (a 40 % cap hid that)
    page.get_by_label("Filter pools by name or alias").fill("ci-debian-11-x86_64")
    bar = board.row("ci-debian-11-x86_64").locator(".bar")
    expect(bar.locator(".bar-running")).to_be_visible()
    share = bar.locator(".bar-running").evaluate("(e) => e.offsetWidth / e.parentElement.offsetWidth")
    assert 0.55 < share < 0.65, share
    expect(page.locator("#ondemand-rows tr")).to_have_count(1)
    expect(page.locator("#ondemand-rows tr")).to_contain_text("ci-debian-12-x86_64 0/3")
    assert board.problems.seen == []


def test_an_idle_tab_costs_under_five_megabytes_an_hour(
    big_site: ApiThread, open_dashboard: Callable[..., Dashboard]
) -> None:
    """Polls measured over a few seconds at a fast rate, each feed's bytes per poll (request and reply,
    headers and body, as sent) then counted at the page's default rates: the feed every 5 s, the
    history every 60 s."""
    with httpx.Client(base_url=big_site.url) as client:
        first = client.get("/dashboard/feed", headers={"Accept-Encoding": "gzip"})
        assert first.headers["content-encoding"] == "gzip" and first.headers["etag"]
        again = client.get("/dashboard/feed", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        unknown = client.get("/dashboard/feed?pool=nope")
        assert unknown.status_code == 404 and "unknown pool" in unknown.json()["error"]
    board = open_dashboard(big_site.url, query="refresh=250&history_refresh=500")
    page = board.page
    expect(page.locator("#problem-rows .problem").first).to_be_visible(timeout=WAIT_MS)
    finished: list[Request] = []

    def record(request: Request) -> None:
        finished.append(request)

    page.on("requestfinished", record)
    page.wait_for_timeout(4000)
    page.remove_listener("requestfinished", record)

    per_poll: dict[str, list[int]] = {"/dashboard/feed": [], "/api/v3/history": []}
    for request in finished:
        sizes = request.sizes()
        path = request.url.split("?")[0].removeprefix(big_site.url)
        per_poll[path].append(sum(sizes.values()))
    polls_an_hour = {"/dashboard/feed": 3600 / 5, "/api/v3/history": 3600 / 60}
    per_hour = sum(sum(seen) / len(seen) * polls_an_hour[path] for path, seen in per_poll.items())
    assert len(per_poll["/dashboard/feed"]) >= 4 and len(per_poll["/api/v3/history"]) >= 2
    assert per_hour <= PER_HOUR_BUDGET, per_hour
    assert board.problems.seen == []

"""The dashboard in a real browser (Debian's chromium through Playwright) over the real API, Redis and manager.

The page polls every ``?refresh=`` ms, so these tests run it at a few hundred milliseconds.
The screenshots of docs/ come from test_dashboard_scale.py (a 1,000-pool site).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.dashboard import REFRESH_MS, WAIT_MS, Dashboard, dashboards, history_point, run, system_chromium
from tests.support.dashboard import site_settings as shared_settings
from tests.support.pools import dummy, manager_for, run_until, settle
from tests.support.servers import ApiThread
from vmpooler.config import Settings
from vmpooler.states import VMState
from vmpooler.store.redis import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"

POOLS: list[dict[str, Any]] = [
    {"name": "debian-12-x86_64", "alias": ["debian", "debian-12"], "template": "templates/debian-12", "size": 4},
    {"name": "centos-9-x86_64", "alias": "centos", "template": "templates/centos-9", "size": 3},
    {"name": "win-2022-x86_64", "template": "templates/win-2022", "size": 2},
]
ALL: list[str] = [p["name"] for p in POOLS]


def site_settings(pools: list[dict[str, Any]] = POOLS, site_name: str = "Test lab", auth: bool = False) -> Settings:
    return shared_settings(pools, site_name, auth)


def fill_with_manager(settings: Settings, redis_port: int, inventory: Path) -> None:
    """The manager with the dummy provider fills every pool to its size."""

    async def work(store: Store) -> None:
        manager = manager_for(settings, store, dummy(inventory))
        await manager.register_pools()

        async def full() -> bool:
            counts = await store.counts([p.name for p in settings.pools])
            return all(counts[p.name][VMState.READY] >= p.size for p in settings.pools)

        await run_until(manager, full)
        await settle(manager)

    run(redis_port, work)


def seed_history(redis_port: int, pools: list[str], minutes: int = 60, hours: int = 24) -> None:
    """``minutes`` one-minute points and ``hours`` one-hour points for each pool, the last a minute (an hour)
    ahead, so that the oldest stays in the range however late the page asks."""
    now = int(time.time())

    async def work(store: Store) -> None:
        for pool in pools:
            for i in range(minutes):
                t = (now // 60 - minutes + 2 + i) * 60
                wave = (math.sin(i / 6) + 1) / 2
                point = history_point(
                    t, ready=round(2 + 2 * wave), running=i // 10, size=4, checkouts=i % 3, boots=1, boot_p50=30.0
                )
                await store.history.add(pool, "1m", point | {"boot_p90": 45.0, "failures": int(i % 17 == 0)})
            for i in range(hours):
                t = (now // 3600 - hours + 2 + i) * 3600
                await store.history.add(pool, "1h", history_point(t, ready=3, running=1, size=4, checkouts=20))

    run(redis_port, work)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with system_chromium() as launched:
        yield launched


@pytest.fixture
def open_dashboard(browser: Browser) -> Iterator[Callable[..., Dashboard]]:
    with dashboards(browser) as open_:
        yield open_


def test_root_redirects_and_the_page_is_served_offline(redis_port: int) -> None:
    with ApiThread(site_settings(), redis_port) as api, httpx.Client(base_url=api.url) as client:
        assert client.get("/").headers["location"] == "/dashboard/"
        page = client.get("/dashboard/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for asset in ("js/main.js", "style.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css"):
            assert f'"{asset}"' in page.text
            assert client.get(f"/dashboard/{asset}").status_code == 200
        assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text
        modules = ("main", "api", "charts", "format", "people", "pools", "problems", "summary", "view")
        for module in modules:  # ES modules, no build step: each served as JavaScript
            assert "javascript" in client.get(f"/dashboard/js/{module}.js").headers["content-type"]


def test_lists_every_pool_with_its_figures(
    redis_port: int, inventory_file: Path, open_dashboard: Callable[..., Dashboard]
) -> None:
    settings = site_settings()
    fill_with_manager(settings, redis_port, inventory_file)
    with ApiThread(settings, redis_port) as api:
        board = open_dashboard(api.url)
        page = board.page
        expect(page.locator("#site-name")).to_have_text("Test lab")
        expect(page).to_have_title("Test lab · vmpooler")
        expect(page.locator("#health")).to_have_attribute("data-state", "ok")
        expect(page.locator("#updated")).to_have_text(re.compile(r"Updated \d\d:\d\d:\d\d"))
        expect(page.locator("#capacity-percent")).to_have_text("100")
        expect(page.locator("#queue-ready")).to_have_text("9")
        expect(page.locator("#pool-count")).to_have_text("3")
        for pool in settings.pools:
            board.expect_figures(pool.name, ready=pool.size, size=pool.size)
        expect(board.row("debian-12-x86_64").locator(".aliases")).to_have_text("debian, debian-12")
        expect(board.row("centos-9-x86_64").locator(".aliases")).to_have_text("centos")
        expect(board.row("win-2022-x86_64").locator(".cell-boot .v")).to_have_text(re.compile("s ago$"))
        expect(page.locator("#users-empty")).to_be_visible()
        page.wait_for_timeout(2 * REFRESH_MS)  # a few polls, each must succeed
        assert board.problems.seen == []


def test_live_levels_follow_the_manager_and_checkouts(
    redis_port: int, inventory_file: Path, open_dashboard: Callable[..., Dashboard]
) -> None:
    settings = site_settings(auth=True)
    with ApiThread(settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        board = open_dashboard(api.url)
        page = board.page
        health = page.locator("#health")
        expect(health).to_have_attribute("data-state", "bad", timeout=WAIT_MS)
        expect(health).to_have_text("3 empty")
        expect(board.row("win-2022-x86_64")).to_have_attribute("data-level", "empty")

        fill_with_manager(settings, redis_port, inventory_file)
        expect(health).to_have_attribute("data-state", "ok", timeout=WAIT_MS)
        board.expect_figures("debian-12-x86_64", ready=4, size=4)

        assert client.post("/api/v3/vm/debian-12-x86_64").status_code == 200
        token = client.post("/api/v3/token", auth=("alice", "secret")).json()["token"]
        taken = client.post("/api/v3/vm/centos+centos", headers={"X-AUTH-TOKEN": token})
        assert taken.status_code == 200, taken.text
        started = time.monotonic()
        board.expect_figures("debian-12-x86_64", ready=3, size=4, running=1)
        board.expect_figures("centos-9-x86_64", ready=1, size=3, running=2)
        assert time.monotonic() - started < 3 * REFRESH_MS / 1000 + 1
        expect(board.row("centos-9-x86_64")).to_have_attribute("data-level", "low")
        expect(page.locator("#queue-running")).to_have_text("3")
        users = page.locator("#user-rows tr")
        expect(users).to_have_count(2)
        expect(users.nth(0)).to_contain_text("alice")
        expect(users.nth(0).locator(".where")).to_have_text("centos-9-x86_64 2")
        expect(users.nth(0).locator(".chip")).to_have_count(2)  # its two hostnames, each with its expiry
        expect(users.nth(1)).to_contain_text("anonymous")
        assert board.problems.seen == []


#: how many pixels of a chart's canvas have (about) the colour of a CSS variable: its drawn data
PIXELS_LIKE = """([chart, variable, minimum]) => {
    const canvas = document.querySelector(`figure[data-chart="${chart}"] canvas`);
    if (!canvas) return false;
    const probe = document.createElement("span");
    probe.style.color = `var(${variable})`;
    document.body.append(probe);
    const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
    probe.remove();
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
        const near = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 40;
        if (near && data[i + 3] > 200) n += 1;
    }
    return n >= minimum;
}"""


def expect_drawn(page: Page, chart: str, css_variable: str, minimum: int) -> None:
    """Waits until the chart's canvas shows at least ``minimum`` pixels in the series' colour."""
    page.wait_for_function(PIXELS_LIKE, arg=[chart, css_variable, minimum], timeout=WAIT_MS)


def test_history_charts_draw_the_recorded_points(
    redis_port: int, inventory_file: Path, open_dashboard: Callable[..., Dashboard]
) -> None:
    settings = site_settings()
    fill_with_manager(settings, redis_port, inventory_file)
    seed_history(redis_port, ALL)
    with ApiThread(settings, redis_port) as api:
        board = open_dashboard(api.url)
        page = board.page
        for chart in ("levels", "checkouts", "refused", "failures", "clone", "boot"):
            expect(page.locator(f'figure[data-chart="{chart}"]')).to_have_attribute("data-points", "60")
            expect(page.locator(f'figure[data-chart="{chart}"] .no-data')).to_be_hidden()
        expect_drawn(page, "levels", "--ready", 100)
        expect_drawn(page, "failures", "--bad", 10)
        expect(page.locator('figure[data-chart="checkouts"] .total')).to_have_text("· 180 in 1h")  # 3 pools x 60

        with page.expect_request(lambda r: "range=7d" in r.url):
            page.get_by_role("button", name="7d").click()
        expect(page.get_by_role("button", name="7d")).to_have_attribute("aria-pressed", "true")
        expect(page.locator('figure[data-chart="levels"]')).to_have_attribute("data-points", "24")
        expect(page.locator('figure[data-chart="checkouts"] .per')).to_have_text("per hour")

        with page.expect_request(lambda r: "pool=centos-9-x86_64" in r.url):
            board.row("centos-9-x86_64").locator("button.name").click()
        expect(page.locator("#history-scope")).to_have_text("centos-9-x86_64")
        expect(page.locator("#history-pool")).to_have_value("centos-9-x86_64")
        expect(board.row("centos-9-x86_64")).to_have_class(re.compile("selected"))
        expect(page.locator('figure[data-chart="checkouts"] .total')).to_have_text("· 480 in 7d")  # 24 x 20
        assert "pool=centos-9-x86_64" in page.url and "range=7d" in page.url

        page.reload()  # the view survives a reload (a wall screen restarting)
        expect(page.locator("#history-scope")).to_have_text("centos-9-x86_64")
        expect(page.get_by_role("button", name="7d")).to_have_attribute("aria-pressed", "true")
        assert board.problems.seen == []


def test_filter_narrows_the_list_by_name_or_alias(redis_port: int, open_dashboard: Callable[..., Dashboard]) -> None:
    with ApiThread(site_settings(), redis_port) as api:
        board = open_dashboard(api.url)
        page = board.page
        expect(board.visible_rows()).to_have_count(3)
        search = page.get_by_label("Filter pools by name or alias")
        for text, shown in (("centos", ["centos-9-x86_64"]), ("DEBIAN-12", ["debian-12-x86_64"]), ("x86", ALL)):
            search.fill(text)
            expect(board.visible_rows()).to_have_count(len(shown))
            for pool in shown:
                expect(board.row(pool)).to_be_visible()
        search.fill("win 2022")  # every word must match
        expect(board.visible_rows()).to_have_count(1)
        expect(page.locator("#pool-count")).to_have_text("1 of 3")
        search.fill("solaris")
        expect(board.visible_rows()).to_have_count(0)
        expect(page.locator("#pool-empty")).to_be_visible()
        search.press("Escape")
        expect(board.visible_rows()).to_have_count(3)
        expect(page.locator("#pool-empty")).to_be_hidden()
        assert board.problems.seen == []


def test_an_api_failure_shows_a_banner_until_it_recovers(
    redis_port: int, open_dashboard: Callable[..., Dashboard]
) -> None:
    with ApiThread(site_settings(), redis_port) as api:
        board = open_dashboard(api.url)
        page = board.page
        expect(page.locator("#pool-count")).to_have_text("3")
        banner = page.locator("#error-banner")
        expect(banner).to_be_hidden()

        page.route("**/dashboard/feed", lambda route: route.fulfill(status=503, json={"ok": False, "error": "down"}))
        expect(banner).to_be_visible(timeout=WAIT_MS)
        expect(banner).to_contain_text("HTTP 503: down")
        expect(page.locator("body")).to_have_class("stale")
        expect(board.row("win-2022-x86_64")).to_be_visible()  # the last figures stay

        expect(page.locator("#health")).to_have_text("Connection lost")
        page.unroute("**/dashboard/feed")
        expect(banner).to_be_hidden(timeout=WAIT_MS)
        expect(page.locator("body")).not_to_have_class("stale")
        expect(page.locator("#health")).to_have_attribute("data-state", "bad")  # its pools are empty

        page.route("**/api/v3/history?*", lambda route: route.abort())
        page.get_by_role("button", name="1d").click()
        expect(banner).to_contain_text("Cannot load the history")
        expect(page.locator("body")).not_to_have_class("stale")  # the live figures are fine
        page.unroute("**/api/v3/history?*")
        expect(banner).to_be_hidden(timeout=WAIT_MS)  # retried at the refresh period, not the history one


def test_phone_width_has_no_horizontal_scroll(
    redis_port: int, inventory_file: Path, open_dashboard: Callable[..., Dashboard]
) -> None:
    settings = site_settings()
    fill_with_manager(settings, redis_port, inventory_file)
    seed_history(redis_port, ALL, hours=0)
    with ApiThread(settings, redis_port) as api:
        board = open_dashboard(api.url, width=390, height=844, is_mobile=True, has_touch=True)
        page = board.page
        board.expect_figures("debian-12-x86_64", ready=4, size=4)
        expect(page.locator('figure[data-chart="levels"]')).to_have_attribute("data-points", "60")
        page.wait_for_timeout(100)  # the charts' resize
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]")
        assert widths[0] <= widths[1] and widths[2] <= widths[1], widths
        for pool in ALL:
            box = board.row(pool).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        expect(board.row("debian-12-x86_64").locator(".cell-running .label")).to_be_visible()
        assert board.problems.seen == []


def test_five_hundred_pools_are_paged_and_filter_responsively(
    redis_port: int, open_dashboard: Callable[..., Dashboard]
) -> None:
    pools = [{"name": f"pool-{i:03d}", "alias": f"alias{i}", "template": f"t/{i}", "size": 2} for i in range(500)]
    settings = site_settings(pools)

    async def some_ready(store: Store) -> None:
        for i in range(0, 500, 7):
            assert await store.create_pending(f"pool-{i:03d}", f"vm{i}", {"clone": "x"})
            assert await store.mark_ready(f"pool-{i:03d}", f"vm{i}", time.time(), 20.0)

    run(redis_port, some_ready)
    with ApiThread(settings, redis_port) as api:
        board = open_dashboard(api.url, query="&sort=name")
        page = board.page
        expect(page.locator("#pool-count")).to_have_text("500", timeout=WAIT_MS)
        expect(page.locator("#pool-rows .pool-row")).to_have_count(50)
        expect(page.locator("#page-info")).to_have_text("1\u201350 of 500")
        expect(board.row("pool-049").locator(".cell-ready b")).to_have_text("1")  # 49 = 7 x 7

        # rows are built once and updated in place: an element survives later polls
        page.evaluate("document.querySelector('[data-pool=\"pool-025\"]').marked = true")
        page.wait_for_timeout(3 * REFRESH_MS)
        assert page.evaluate("document.querySelector('[data-pool=\"pool-025\"]').marked === true")

        page.locator("#page-next").click()
        expect(page.locator("#page-info")).to_have_text("51\u2013100 of 500")
        expect(page.locator("#pool-rows .pool-row").first).to_have_attribute("data-pool", "pool-050")
        assert "page=2" in page.url

        search = page.get_by_label("Filter pools by name or alias")
        started = time.monotonic()
        search.fill("pool-12")
        expect(page.locator("#pool-count")).to_have_text("10 of 500")  # pool-120 to pool-129
        expect(page.locator("#page-info")).to_be_hidden()  # one page: no pager
        search.fill("alias499")
        expect(page.locator("#pool-count")).to_have_text("1 of 500")
        expect(board.row("pool-499")).to_be_visible()
        assert time.monotonic() - started < 1.0

        page.select_option("#sort", "fill")
        expect(page.locator("#pool-rows .pool-row").first).to_have_attribute("data-level", "empty")
        assert board.problems.seen == []


# ---- the README's screenshot ---------------------------------------------------------------

SHOWCASE: list[dict[str, Any]] = [
    {"name": "debian-12-x86_64", "alias": ["debian", "debian-12"], "size": 12, "ready": 9, "pending": 3, "rate": 1.4},
    {"name": "ubuntu-2404-x86_64", "alias": ["ubuntu", "noble"], "size": 10, "ready": 10, "pending": 0, "rate": 1.1},
    {"name": "rhel-9-x86_64", "alias": ["rhel", "redhat-9"], "size": 8, "ready": 5, "pending": 2, "rate": 0.8},
    {"name": "centos-9-x86_64", "alias": "centos", "size": 6, "ready": 6, "pending": 0, "rate": 0.5},
    {"name": "win-2022-x86_64", "alias": ["windows", "win-2022"], "size": 6, "ready": 2, "pending": 4, "rate": 0.6},
    {"name": "macos-14-arm64", "alias": "macos", "size": 4, "ready": 3, "pending": 1, "rate": 0.3},
    {"name": "fedora-40-x86_64", "alias": "fedora", "size": 4, "ready": 4, "pending": 0, "rate": 0.2},
]
CHECKOUTS = {
    "alice": {"debian-12-x86_64": 3, "win-2022-x86_64": 2},
    "ci-nightly": {"ubuntu-2404-x86_64": 6, "rhel-9-x86_64": 3, "debian-12-x86_64": 4},
    "bob": {"macos-14-arm64": 1, "centos-9-x86_64": 1},
}


def showcase_history(rng: random.Random, pool: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """An hour of believable minutes for a showcase pool, ending at its current levels."""
    running_now = sum(user.get(pool["name"], 0) for user in CHECKOUTS.values())
    points = []
    for i in range(60):
        busy = 0.6 + 0.4 * math.sin(i / 9 + len(pool["name"]))
        checkouts = max(0, round(rng.gauss(pool["rate"] * busy, 0.8)))
        ready = max(0, pool["size"] - checkouts - rng.choice((0, 0, 0, 1, 2)))
        running = max(0, round(running_now * (0.45 + 0.55 * i / 59) + rng.uniform(-0.7, 0.7)))
        if i == 59:
            ready, running = pool["ready"], running_now
        p50 = rng.uniform(38, 52) * (1.8 if pool["name"].startswith(("win", "mac")) else 1)
        points.append(
            history_point(
                (now // 60 - 59 + i) * 60,
                ready=ready,
                running=running,
                pending=pool["size"] - ready,
                size=pool["size"],
                checkouts=checkouts,
                failures=int(rng.random() < 0.03),
                boots=checkouts,
                boot_p50=round(p50, 1),
                boot_p90=round(p50 * rng.uniform(1.3, 1.9), 1),
            )
        )
    return points


def test_realistic_dashboard(redis_port: int, open_dashboard: Callable[..., Dashboard], tmp_path: Path) -> None:
    """A site with a few pools, VMs checked out by several users and an hour of history; its screenshot."""
    rng = random.Random(11)
    pools = [
        {"name": p["name"], "alias": p["alias"], "template": f"templates/{p['name']}", "size": p["size"]}
        for p in SHOWCASE
    ]
    settings = site_settings(pools, site_name="Build farm · eu-west", auth=True)
    now = int(time.time())

    async def populate(store: Store) -> None:
        for pool in SHOWCASE:
            want = pool["ready"] + sum(user.get(pool["name"], 0) for user in CHECKOUTS.values())
            for i in range(want + pool["pending"]):
                name = f"{pool['name'][:3]}{rng.randrange(16**8):08x}"
                assert await store.create_pending(pool["name"], name, {"clone": "x"})
                if i < want:
                    await store.record_clone_time(pool["name"], name, now, rng.uniform(8, 25))
                    booted = now - rng.uniform(20, 900)
                    assert await store.mark_ready(pool["name"], name, booted, rng.uniform(35, 90))
            for point in showcase_history(rng, pool, now):
                await store.history.add(pool["name"], "1m", point)

    run(redis_port, populate)
    with ApiThread(settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=10) as client:
        for user, taken in CHECKOUTS.items():
            token = client.post("/api/v3/token", auth=(user, "secret")).json()["token"]
            for pool, count in taken.items():
                reply = client.post(f"/api/v3/vm/{'+'.join([pool] * count)}", headers={"X-AUTH-TOKEN": token})
                assert reply.status_code == 200, reply.text
        board = open_dashboard(api.url, width=1440, height=900)
        page = board.page
        board.expect_figures("win-2022-x86_64", ready=2, size=6, pending=4, running=2)
        expect(page.locator("#user-rows tr")).to_have_count(3)
        # 60, or 59 once the oldest minute has left the hour
        expect(page.locator('figure[data-chart="boot"]')).to_have_attribute("data-points", re.compile("^(59|60)$"))
        page.wait_for_timeout(500)  # bar transitions
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 20_000

        page.emulate_media(color_scheme="dark")  # the charts redraw in the dark theme's colours
        expect(page.locator('figure[data-chart="levels"] canvas')).to_have_count(1)
        expect_drawn(page, "levels", "--ready", 100)
        page.screenshot(path=tmp_path / "dashboard-dark.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        page.screenshot(path=tmp_path / "dashboard-phone.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert board.problems.seen == []


def test_an_autoscaled_pool_shows_its_target_and_slo(
    redis_port: int, inventory_file: Path, open_dashboard: Callable[..., Dashboard]
) -> None:
    scaled = {**POOLS[2], "size": 0, "autoscale": {"min": 2, "max": 5, "target_wait_p95_s": 1}}
    settings = site_settings([POOLS[0], scaled])
    fill_with_manager(settings, redis_port, inventory_file)
    with ApiThread(settings, redis_port) as api:
        board = open_dashboard(api.url)
        flag = board.row("win-2022-x86_64").locator(".flag")
        expect(flag).to_have_text("autoscale: target 2", timeout=WAIT_MS)
        assert httpx.post(f"{api.url}/api/v3/vm/win-2022-x86_64").status_code == 200
        expect(flag).to_have_text("autoscale: target 2 · 100.0% waited ≤ 1s (24h)", timeout=WAIT_MS)
        expect(board.row("debian-12-x86_64").locator(".flag")).to_have_text("")

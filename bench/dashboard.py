"""The dashboard of a 1,000-pool site in Debian's chromium: first render, feed time and size, an idle tab's bytes.

Starts a private redis-server and ``vmpooler api`` (no manager: an idle site) with 1,000 pools of two ready
VMs, then: loads the page ``--loads`` times, each in a fresh browser context, and reads when the first feed
was drawn (the page's ``first-render`` mark, from the navigation's start); times ``GET /dashboard/feed``
built afresh (the API caches it one second) and gzip-compressed; and counts the bytes an idle tab sends and
receives (headers and bodies as sent, Chromium's own figures) while polling fast, scaled to the page's
default rates (the feed every 5 s, the history every 60 s). Targets (issue 17): first render <= 1 s,
<= 5 MB an hour. A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/dashboard.py [--pools 1000] [--loads 5] [--idle-seconds 6] [--json FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Request, sync_playwright
from rich.table import Table

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    verdict,
    write_config,
)
from status import fill, pool_name

FIRST_RENDER_TARGET_MS = 1000.0
IDLE_TARGET_MB_PER_HOUR = 5.0
CHROMIUM = "/usr/bin/chromium"
FEED = "/dashboard/feed"
HISTORY = "/api/v3/history"


def first_renders(browser: Any, url: str, loads: int) -> list[float]:
    times = []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(f"{url}/dashboard/")
        page.wait_for_function("() => performance.getEntriesByName('first-render').length > 0", timeout=30000)
        times.append(float(page.evaluate("performance.getEntriesByName('first-render')[0].startTime")))
        context.close()
        time.sleep(1.2)  # past the API's one-second cache: the next load builds the feed afresh
    return times


def idle_bytes(browser: Any, url: str, seconds: float) -> dict[str, float]:
    """Bytes per poll of each feed, measured polling every 250 ms (feed) and 500 ms (history)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{url}/dashboard/?refresh=250&history_refresh=500")
    page.wait_for_function("() => performance.getEntriesByName('first-render').length > 0", timeout=30000)
    finished: list[Request] = []

    def record(request: Request) -> None:
        finished.append(request)

    page.on("requestfinished", record)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("requestfinished", record)
    seen: dict[str, list[int]] = {FEED: [], HISTORY: []}
    for request in finished:
        path = request.url.split("?")[0].removeprefix(url)
        if path in seen:
            seen[path].append(sum(request.sizes().values()))
    context.close()
    return {path: statistics.fmean(sizes) for path, sizes in seen.items() if sizes}


def feed_figures(url: str) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=30) as client:
        timings = []
        for _ in range(5):
            time.sleep(1.1)  # past the cache
            started = time.perf_counter()
            reply = client.get(FEED, headers={"Accept-Encoding": "gzip"})
            timings.append((time.perf_counter() - started) * 1000)
        raw = len(reply.content)
        compressed = int(reply.headers.get("content-length", 0)) or raw
    return {"build_ms_median": statistics.median(timings), "raw_bytes": raw, "gzip_bytes": compressed}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, _ = start_redis(children, workdir)
        config = write_config(workdir / "dashboard.yaml", redis_port, [(pool_name(i), 2) for i in range(args.pools)])
        url, _ = start_vmpooler(children, "api", config, workdir)

        async def seed() -> None:
            from vmpooler.store.connection import connect
            from vmpooler.store.redis import Store

            store = Store(connect("127.0.0.1", redis_port))
            try:
                await fill(store, args.pools, 2)
            finally:
                await store.close()

        run_async(seed())
        feed = feed_figures(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            try:
                renders = first_renders(browser, url, args.loads)
                per_poll = idle_bytes(browser, url, args.idle_seconds)
            finally:
                browser.close()
    per_hour = per_poll.get(FEED, 0) * 3600 / 5 + per_poll.get(HISTORY, 0) * 3600 / 60
    return {
        "first_render_ms": renders,
        "first_render_median_ms": statistics.median(renders),
        "feed": feed,
        "bytes_per_poll": per_poll,
        "idle_mb_per_hour": per_hour / 1e6,
    }


def report(result: dict[str, Any], args: argparse.Namespace, load: float) -> None:
    table = Table(title=f"dashboard, {args.pools} pools (load average {load:.1f} on a shared machine)")
    for column in ("figure", "measured", "target", ""):
        table.add_column(column)
    median = result["first_render_median_ms"]
    renders = ", ".join(f"{t:.0f}" for t in result["first_render_ms"])
    table.add_row("first render, median ms", f"{median:.0f} ({renders})", "<= 1000", verdict(median <= 1000))
    per_hour = result["idle_mb_per_hour"]
    table.add_row("idle tab, MB an hour", f"{per_hour:.2f}", "<= 5", verdict(per_hour <= IDLE_TARGET_MB_PER_HOUR))
    feed = result["feed"]
    table.add_row("feed built afresh, median ms", f"{feed['build_ms_median']:.0f}", "", "")
    table.add_row("feed bytes, raw / gzip", f"{feed['raw_bytes']:,} / {feed['gzip_bytes']:,}", "", "")
    for path, size in result["bytes_per_poll"].items():
        table.add_row(f"idle poll of {path}, bytes", f"{size:.0f}", "", "")
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--pools", type=int, default=1000, help="configured pools (default 1000)")
    parser.add_argument("--loads", type=int, default=5, help="page loads timed (default 5)")
    parser.add_argument("--idle-seconds", type=float, default=6.0, help="seconds of idle polling (default 6)")
    args = parse_with_figures(parser, argv)
    if args.pools < 1 or args.loads < 1 or args.idle_seconds <= 0:
        parser.error("--pools, --loads and --idle-seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("dashboard", args, lambda: run(args), lambda result, load: report(result, args, load))


if __name__ == "__main__":
    sys.exit(main())

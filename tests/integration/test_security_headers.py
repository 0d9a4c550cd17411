"""Security headers over a real socket, and the dashboard and API docs working under their CSP in a real chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import Problems, chromium, chromium_path
from tests.support.servers import ApiThread, start_redis
from vmpooler.api.middleware.headers import DASHBOARD_POLICY
from vmpooler.config import parse_settings

POOLS = [{"name": "debian-12", "alias": "debian", "template": "t/deb", "size": 2}]
# collects every CSP violation the page reports, from before its first script runs
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis = start_redis(tmp_path_factory.mktemp("redis-headers"))
    raw: dict[str, Any] = {"pools": POOLS, "auth": {"provider": "dummy"}, "config": {"site_name": "CSP lab"}}
    settings, _ = parse_settings(raw, env={})
    try:
        with ApiThread(settings, redis.port) as server:
            yield server.url
    finally:
        redis.stop()


def test_dashboard_page_and_files_send_the_strict_policy(api: str) -> None:
    for path in (
        "/dashboard/",
        "/dashboard/js/main.js",
        "/dashboard/style.css",
        "/dashboard/vendor/uplot/uPlot.min.css",
    ):
        reply = httpx.get(api + path)
        assert reply.status_code == 200, path
        assert reply.headers["content-security-policy"] == DASHBOARD_POLICY, path
        assert "unsafe-inline" not in reply.headers["content-security-policy"]
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert reply.headers["x-frame-options"] == "DENY"
    missing = httpx.get(api + "/dashboard/nothing-here.js")
    assert missing.status_code == 404 and missing.headers["content-security-policy"] == DASHBOARD_POLICY


def test_api_replies_are_nosniff_and_token_replies_not_cached(api: str) -> None:
    for path in ("/api/v3/status", "/vm", "/api/v3/vm/no-such-vm", "/healthcheck"):
        assert httpx.get(api + path).headers["x-content-type-options"] == "nosniff", path
    for feed in ("/dashboard/feed", "/dashboard/stats/vmpooler/pool", "/api/v3/status"):  # data, not pages
        reply = httpx.get(api + feed)
        assert reply.status_code == 200 and "content-security-policy" not in reply.headers, feed
    assert "cache-control" not in httpx.get(api + "/api/v3/status").headers
    made = httpx.post(api + "/api/v3/token", auth=("alice", "pw"))
    token = made.json()["token"]
    replies = [
        made,
        httpx.get(api + "/api/v3/token", auth=("alice", "pw")),
        httpx.get(api + f"/token/{token}"),
        httpx.get(api + "/api/v1/token"),  # a 401 too
        httpx.delete(api + f"/api/v2/token/{token}", auth=("alice", "pw")),
    ]
    for reply in replies:
        assert reply.headers["cache-control"] == "no-store", reply.request.url
        assert reply.headers["x-content-type-options"] == "nosniff"


def test_no_cors_for_another_origin(api: str) -> None:
    evil = {"Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in httpx.get(api + "/api/v3/status", headers=evil).headers
    preflight = httpx.options(
        api + "/api/v3/token",
        headers={**evil, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert preflight.status_code in (404, 405)
    assert not any(name.startswith("access-control-") for name in preflight.headers)


# --- in a real browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium (scripts/ensure-system-deps.sh installs Debian's)")
    with chromium(path) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Problems]]:
    """A fresh page watching for CSP violations; ``Problems`` also gets every console message about the policy."""
    context = browser.new_context()
    context.add_init_script(WATCH_VIOLATIONS)
    problems = Problems()
    page = problems.watch(context.new_page())
    page.on("console", lambda m: problems.seen.append(m.text) if "Content Security Policy" in m.text else None)
    yield page, problems
    context.close()


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__violations")
    return found


def test_the_dashboard_works_under_its_policy(api: str, page: tuple[Page, Problems]) -> None:
    tab, problems = page
    tab.goto(f"{api}/dashboard/?refresh=300")
    expect(tab.locator("#site-name")).to_have_text("CSP lab", timeout=5000)
    expect(tab.locator('.pool-row[data-pool="debian-12"] .cell-ready .of')).to_have_text(" / 2", timeout=5000)
    expect(tab.locator('[data-chart="levels"] .no-data')).to_be_visible(timeout=5000)
    tab.wait_for_timeout(700)  # a couple of refreshes, which restyle the bars from script
    assert violations(tab) == [] and problems.seen == []
    # the watcher does see what the policy blocks: an inline script added now is refused and reported
    tab.evaluate("document.body.append(Object.assign(document.createElement('script'), {text: 'window.ran = 1'}))")
    tab.wait_for_function("window.__violations.length > 0", timeout=5000)
    assert tab.evaluate("window.ran") is None
    assert violations(tab) == ["script-src-elem blocked inline"]


def test_the_api_docs_render_under_their_policy(api: str, page: tuple[Page, Problems]) -> None:
    tab, problems = page
    reply = tab.goto(f"{api}/api/docs")
    assert reply is not None
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "frame-ancestors 'none'" in policy
    expect(tab.locator(".swagger-ui .opblock").first).to_be_visible(timeout=10000)
    expect(tab.locator(".swagger-ui .info .title")).to_contain_text("vmpooler")
    assert violations(tab) == [] and problems.seen == []

"""The rate limiter over a real socket against a real Redis: budgets, 429 replies, and sharing across processes."""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.servers import ApiThread, make_store, start_redis
from vmpooler.api.app import create_app
from vmpooler.api.middleware.ratelimit import client_address
from vmpooler.config import Settings, enabled_limits, parse_settings
from vmpooler.errors import ConfigError

POOLS = [{"name": "deb", "template": "t/deb", "size": 1}]


def settings(rate_limits: dict[str, Any] | None = None, **config: Any) -> Settings:
    raw: dict[str, Any] = {"pools": POOLS, "config": config}
    if rate_limits is not None:
        raw["rate_limits"] = rate_limits
    parsed, _ = parse_settings(raw, env={})
    return parsed


def limited(**limits: Any) -> Settings:
    return settings({"enabled": True, **limits})


Start = Callable[[Settings], httpx.Client]


@pytest.fixture
def client_for(redis_port: int) -> Iterator[Start]:
    """Starts an API on the test Redis with the given settings and returns an HTTP client for it."""
    with contextlib.ExitStack() as stack:

        def start(config: Settings) -> httpx.Client:
            server = stack.enter_context(ApiThread(config, redis_port))
            return stack.enter_context(httpx.Client(base_url=server.url, timeout=10))

        yield start


def test_under_the_limit_replies_carry_the_budget(client_for: Start) -> None:
    api = client_for(limited(global_per_ip={"limit": 5}))
    before = time.time()
    reply = api.get("/api/v3/vm")
    assert reply.status_code == 200
    assert reply.json() == ["deb"]
    assert reply.headers["X-RateLimit-Limit"] == "5"
    assert reply.headers["X-RateLimit-Remaining"] == "4"
    assert before + 59 <= int(reply.headers["X-RateLimit-Reset"]) <= time.time() + 61
    assert "Retry-After" not in reply.headers
    assert api.get("/api/v3/vm").headers["X-RateLimit-Remaining"] == "3"


def test_the_request_over_the_limit_is_429_with_what_to_do(client_for: Start) -> None:
    api = client_for(limited(global_per_ip={"limit": 3, "period": 30}))
    assert [api.get("/api/v3/status").status_code for _ in range(3)] == [200, 200, 200]
    reply = api.get("/api/v3/status")
    assert reply.status_code == 429
    body = reply.json()
    assert list(body) == ["ok", "error", "limit", "period", "retry_after"]
    assert body["ok"] is False
    assert body["error"].startswith("Rate limit exceeded: at most 3 requests from your address per 30 s")
    assert f"retry after {body['retry_after']} s" in body["error"]
    assert (body["limit"], body["period"]) == (3, 30)
    assert 1 <= body["retry_after"] <= 30
    assert reply.headers["Retry-After"] == str(body["retry_after"])
    assert reply.headers["X-RateLimit-Limit"] == "3"
    assert reply.headers["X-RateLimit-Remaining"] == "0"
    assert int(reply.headers["X-RateLimit-Reset"]) >= time.time()
    assert reply.headers["content-type"].startswith("application/json")


def test_health_and_static_paths_are_never_limited(client_for: Start) -> None:
    api = client_for(limited(global_per_ip={"limit": 1}))
    for _ in range(3):
        reply = api.get("/healthcheck")
        assert reply.status_code in (200, 503)  # 503: no manager runs in this test; never 429
        assert "X-RateLimit-Limit" not in reply.headers
        assert api.get("/api/static/swagger/LICENSE").status_code != 429
    assert api.get("/api/v3/vm").status_code == 200
    assert api.get("/api/v3/vm").status_code == 429


def test_checkouts_and_returns_have_tighter_budgets_of_their_own(client_for: Start) -> None:
    api = client_for(limited(vm_creation={"limit": 2}, vm_deletion={"limit": 1}))
    first = api.post("/api/v3/vm/deb")
    assert first.status_code != 429  # the pool is empty: 503, but counted
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert api.post("/vm", json={"deb": 1}).status_code != 429  # the unversioned path is the same class
    refused = api.post("/api/v1/vm/deb")
    assert refused.status_code == 429
    assert refused.json()["limit"] == 2
    assert "VM checkouts" in refused.json()["error"]
    # snapshots are not checkouts, and other routes still have the global budget (refusals spent none)
    assert api.post("/api/v3/vm/deb-vm0/snapshot").status_code != 429
    listed = api.get("/api/v3/vm")
    assert listed.status_code == 200
    assert listed.headers["X-RateLimit-Remaining"] == str(100 - 4)
    assert api.delete("/api/v3/vm/deb-vm0").status_code != 429
    assert api.delete("/api/v3/vm/deb-vm1").status_code == 429


def test_token_requests_have_a_tight_budget_against_password_guessing(client_for: Start) -> None:
    api = client_for(limited(token_creation={"limit": 3}))
    for _ in range(3):  # auth is off here: each is refused by the route (404), after it was counted
        assert api.post("/api/v3/token", auth=("alice", "guess")).status_code != 429
    refused = api.post("/token", auth=("alice", "guess"))  # the unversioned path shares the budget
    assert refused.status_code == 429 and refused.json()["limit"] == 3
    assert "password checks" in refused.json()["error"] and int(refused.headers["Retry-After"]) >= 1
    assert api.get("/api/v3/vm").status_code == 200  # the other routes keep their own budget


def test_a_token_is_limited_across_addresses_and_counted_by_its_hash(client_for: Start, redis_port: int) -> None:
    # the proxy in front (here: loopback) names each client in X-Forwarded-For
    api = client_for(limited(authenticated={"limit": 3}, trusted_proxies=["127.0.0.1/32"]))
    token = "abcdefghijklmnopqrstuvwxyz012345"

    def get(address: str, with_token: str | None = token) -> httpx.Response:
        headers = {"X-Forwarded-For": f"203.0.113.9, {address}"}
        if with_token:
            headers["X-AUTH-TOKEN"] = with_token
        return api.get("/api/v3/vm", headers=headers)

    assert [get(f"10.0.0.{i}").status_code for i in (1, 2, 3)] == [200, 200, 200]
    refused = get("10.0.0.4")
    assert refused.status_code == 429
    assert refused.json()["limit"] == 3
    assert "your token" in refused.json()["error"]
    assert get("10.0.0.4", "another-token").status_code == 200
    assert get("10.0.0.4", None).status_code == 200
    with redis.Redis(port=redis_port, decode_responses=True) as client:
        counters = [str(key) for key in client.keys("vmpooler__ratelimit__*")]
        assert 0 < int(client.pttl("vmpooler__ratelimit__global_per_ip__ip:10.0.0.1")) <= 60_000
    assert not [key for key in counters if token in key]
    assert len([key for key in counters if key.startswith("vmpooler__ratelimit__authenticated__token:")]) == 2


def test_addresses_have_budgets_of_their_own_behind_a_trusted_proxy(client_for: Start) -> None:
    api = client_for(limited(global_per_ip={"limit": 2}, trusted_proxies=["127.0.0.0/8", "::1"]))
    one, two = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    assert [api.get("/api/v3/vm", headers=one).status_code for _ in range(3)] == [200, 200, 429]
    assert api.get("/api/v3/vm", headers=two).status_code == 200


def test_forwarded_for_is_read_only_from_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.1.0.0/16")]

    def scope(peer: str, forwarded: str | None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"type": "http", "client": (peer, 5000), "headers": headers}

    assert client_address(scope("192.0.2.7", "1.2.3.4"), proxies) == "192.0.2.7"
    assert client_address(scope("10.1.0.5", "1.2.3.4"), proxies) == "1.2.3.4"
    # a client cannot pose as someone else by sending its own X-Forwarded-For through the proxy
    assert client_address(scope("10.1.0.5", "6.6.6.6, 1.2.3.4, 10.1.9.9"), proxies) == "1.2.3.4"
    assert client_address(scope("10.1.0.5", None), proxies) == "10.1.0.5"
    assert client_address(scope("10.1.0.5", "1.2.3.4"), []) == "10.1.0.5"
    assert client_address({"type": "http", "headers": []}, proxies) == "unknown"


def test_two_api_processes_share_one_budget(client_for: Start) -> None:
    config = limited(global_per_ip={"limit": 4})
    first, second = client_for(config), client_for(config)
    assert [api.get("/api/v3/vm").status_code for api in (first, second, first, second)] == [200] * 4
    assert first.get("/api/v3/vm").status_code == 429
    assert second.get("/api/v3/vm").status_code == 429


def test_off_unless_enabled(client_for: Start) -> None:
    for config in (settings(), settings({"global_per_ip": {"limit": 1}})):
        api = client_for(config)
        replies = [api.get("/api/v3/vm") for _ in range(110)]
        assert {reply.status_code for reply in replies} == {200}
        assert "X-RateLimit-Limit" not in replies[-1].headers


def test_enabled_by_either_switch_and_validated_even_when_off() -> None:
    raw = {":config:": {"rate_limiting_enabled": True}, ":rate_limits:": {":vm_creation:": {":limit:": 5}}}
    parsed, warnings = parse_settings(raw, env={})
    assert warnings == []
    limits = enabled_limits(parsed)
    assert limits is not None
    assert (limits.vm_creation.limit, limits.vm_creation.period, limits.global_per_ip.limit) == (5, 60, 100)
    assert enabled_limits(settings({"enabled": True})) is not None
    assert enabled_limits(settings({"enabled": False})) is None
    assert enabled_limits(settings()) is None
    with pytest.raises(ConfigError, match=r"rate_limits\.global_per_ip\.period"):
        enabled_limits(settings({"global_per_ip": {"limit": 1, "period": 0}}))


@pytest.mark.parametrize(
    ("rate_limits", "problem"),
    [
        ({"vm_creation": {"limit": 0}}, "rate_limits.vm_creation.limit: input should be greater than or equal to 1"),
        ({"vm_deletion": {"limit": "lots"}}, "rate_limits.vm_deletion.limit: input should be a valid integer"),
        ({"authenticated": {"period": 30}}, "rate_limits.authenticated.limit: required"),
        ({"global_per_ip": {"limt": 3}}, "rate_limits.global_per_ip.limt: unknown key; known keys are limit, period"),
        ({"per_token": {"limit": 3}}, "rate_limits.per_token: unknown key; known keys are enabled, global_per_ip"),
        ({"trusted_proxies": ["proxy.example"]}, "rate_limits.trusted_proxies[0]: "),
    ],
)
async def test_a_bad_value_stops_start_up_naming_the_key(
    rate_limits: dict[str, Any], problem: str, redis_port: int
) -> None:
    store = make_store(redis_port)
    try:
        with pytest.raises(ConfigError) as caught:
            create_app(settings(rate_limits), store)
    finally:
        await store.close()
    assert any(found.startswith(problem) for found in caught.value.problems), caught.value.problems


def test_a_new_window_brings_a_new_budget(client_for: Start) -> None:
    api = client_for(limited(global_per_ip={"limit": 2, "period": 1}))
    assert [api.get("/api/v3/vm").status_code for _ in range(2)] == [200, 200]
    refused = api.get("/api/v3/vm")
    assert refused.status_code == 429
    assert refused.json()["retry_after"] == 1
    time.sleep(1.05)
    again = api.get("/api/v3/vm")
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "1"


def test_with_redis_down_requests_go_through_the_limiter(tmp_path: Path) -> None:
    private = start_redis(tmp_path / "redis")
    try:
        with (
            ApiThread(limited(global_per_ip={"limit": 1}), private.port) as server,
            httpx.Client(base_url=server.url, timeout=10) as api,
        ):
            assert api.get("/").status_code == 302  # the redirect to the dashboard
            assert api.get("/").status_code == 429
            private.kill()
            replies = [api.get("/") for _ in range(3)]
            assert [reply.status_code for reply in replies] == [302] * 3  # this route needs no Redis
            assert "X-RateLimit-Limit" not in replies[0].headers
            assert api.get("/api/v3/status").status_code == 503  # the route's own answer
    finally:
        private.kill()

"""The core API over a real socket against a real Redis: replies as the original's clients expect them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pools import settings_with
from tests.support.servers import ApiThread, RedisProcess, shared_api_client, start_redis
from vmpooler.config import Settings, parse_settings
from vmpooler.states import VMState
from vmpooler.store.redis import Store

DOMAIN = "pool.example.com"


def demo_settings(**config: Any) -> Settings:
    raw = {
        "dns_configs": {"ex": {"dns_class": "dynamic-dns", "domain": DOMAIN}},
        "tagfilter": {"url": r"(.*)\/"},
        "config": {"max_lifetime_upper_limit": 168, **config},
        "pools": [
            {"name": "deb", "alias": ["debian"], "template": "t/deb", "size": 5, "dns_plugin": "ex"},
            {"name": "cent", "alias": "centos", "template": "t/cent", "size": 5, "dns_plugin": "ex"},
            {"name": "win", "template": "t/win", "size": 2},
        ],
    }
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(demo_settings(), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


async def fill(store: Store, pool: str, count: int) -> list[str]:
    names = [f"{pool}-vm{i}" for i in range(count)]
    for i, name in enumerate(names):
        assert await store.create_pending(pool, name, {"clone": "x", "ip": f"10.0.0.{i}"})
        assert await store.mark_ready(pool, name, time.time(), 2.0)
    return names


def hostnames(body: dict[str, Any], key: str) -> list[str]:
    value = body[key]["hostname"]
    return value if isinstance(value, list) else [value]


def test_lists_pool_names(api: httpx.Client) -> None:
    for path in ("/vm", "/api/v3/vm"):
        reply = api.get(path)
        assert reply.status_code == 200
        assert reply.json() == ["deb", "cent", "win"]
        assert reply.headers["content-type"].startswith("application/json")


async def test_checkout_by_url_v3_gives_fqdns(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 3)
    await fill(store, "cent", 1)
    reply = api.post("/api/v3/vm/deb+deb+cent")
    assert reply.status_code == 200
    body = reply.json()
    assert body["ok"] is True and "domain" not in body
    assert body["deb"]["hostname"] == [f"deb-vm0.{DOMAIN}", f"deb-vm1.{DOMAIN}"]
    assert body["cent"]["hostname"] == f"cent-vm0.{DOMAIN}"
    assert await store.members("deb", VMState.RUNNING) == {"deb-vm0", "deb-vm1"}


async def test_seed_readme_curl_forms_work(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 3)
    await fill(store, "cent", 2)
    # `curl -d '{"deb":"2","cent":"1"}' --url host/vm` posts form-encoded JSON
    reply = api.post(
        "/vm", content=b'{"deb":"2","cent":"1"}', headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body == {
        "ok": True,
        "deb": {"hostname": ["deb-vm0", "deb-vm1"]},
        "cent": {"hostname": "cent-vm0"},
        "domain": DOMAIN,
    }
    # `curl -d --url host/vm/<pool>` posts the literal data "--url", which must be ignored
    reply = api.post("/vm/deb", content=b"--url", headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200
    assert reply.json()["deb"]["hostname"] == "deb-vm2"
    assert reply.text.startswith('{\n  "ok": true,')  # pretty-printed like JSON.pretty_generate


async def test_checkout_by_alias_answers_under_the_alias(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 1)
    reply = api.post("/api/v3/vm", json={"debian": 1})
    assert reply.status_code == 200
    assert reply.json()["debian"]["hostname"] == f"deb-vm0.{DOMAIN}"


async def test_shortage_is_503_and_takes_nothing(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 1)
    await fill(store, "cent", 1)
    for attempt in (api.post("/api/v3/vm", json={"deb": "1", "cent": "2"}), api.post("/api/v3/vm/deb+cent+cent")):
        assert attempt.status_code == 503
        body = attempt.json()
        assert body["ok"] is False and "cent" in body["error"] and "nothing was checked out" in body["error"]
    assert await store.members("deb", VMState.READY) == {"deb-vm0"}
    assert await store.members("cent", VMState.READY) == {"cent-vm0"}
    assert not await store.members("deb", VMState.RUNNING)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/api/v3/vm", b"{bad", 400, "Invalid JSON"),
        ("post", "/api/v3/vm", b"[1, 2]", 400, "must be a JSON object"),
        ("post", "/api/v3/vm", b"", 400, "empty"),
        ("post", "/api/v3/vm", b'{"deb": 0}', 400, "at least 1"),
        ("post", "/api/v3/vm", b'{"deb": "many"}', 400, "must be an integer"),
        ("post", "/api/v3/vm", b'{"deb": 101}', 400, "at most 100"),
        ("post", "/api/v3/vm", b'{"nope": 1}', 404, "unknown pool or alias 'nope'"),
        ("post", "/api/v3/vm/nope+deb", b"", 404, "unknown pool or alias 'nope'"),
        ("post", "/api/v3/vm/deb++deb", b"", 400, "empty pool name"),
        ("post", "/api/v3/vm/bad%20name", b"", 400, "Invalid pool name"),
        ("get", "/api/v3/vm/ghost", None, 404, "no VM named 'ghost'"),
        ("get", "/api/v3/vm/-bad-", None, 400, "Invalid hostname"),
        ("delete", "/api/v3/vm/ghost", None, 404, "no VM named 'ghost'"),
        ("put", "/api/v3/vm/ghost", b'{"lifetime": 2}', 404, "no VM named 'ghost'"),
        ("get", "/no/such/route", None, 404, "no such route"),
        ("patch", "/api/v3/vm", None, 405, "not allowed"),
    ],
)
def test_bad_requests_get_clear_json_errors(
    api: httpx.Client, method: str, path: str, body: bytes | None, status: int, words: str
) -> None:
    reply = api.request(method.upper(), path, content=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    payload = reply.json()
    assert payload["ok"] is False
    assert words in payload["error"]


async def test_query_a_checked_out_vm(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 1)
    api.post("/api/v3/vm/deb")
    reply = api.get(f"/api/v3/vm/deb-vm0.{DOMAIN}")  # an FQDN is accepted
    assert reply.status_code == 200
    info = reply.json()["deb-vm0"]
    assert info["state"] == "running" and info["template"] == "deb" and info["lifetime"] == 24
    assert info["ip"] == "10.0.0.0" and info["fqdn"] == f"deb-vm0.{DOMAIN}"
    assert 0 <= info["running"] < 0.1 and 23.9 < info["remaining"] <= 24
    assert info["start_time"].endswith("Z") and info["end_time"] > info["start_time"]
    legacy = api.get("/vm/deb-vm0").json()
    assert legacy["deb-vm0"]["domain"] == DOMAIN and "fqdn" not in legacy["deb-vm0"]  # as the seed README


async def test_modify_lifetime_and_tags(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 1)
    api.post("/vm/deb")
    assert api.put("/vm/deb-vm0", content=b'{"lifetime":"2"}').json() == {"ok": True}
    tags = {"tags": {"department": "engineering", "url": "foo.com/something.html", "empty": ""}}
    assert api.put("/vm/deb-vm0", json=tags).status_code == 200
    info = api.get("/api/v3/vm/deb-vm0").json()["deb-vm0"]
    assert info["lifetime"] == 2
    assert info["tags"] == {"department": "engineering", "url": "foo.com"}  # tagfilter applied, empty skipped
    assert 1.9 < info["remaining"] <= 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"lifetime": 0}, "positive integer"),
        ({"lifetime": "two"}, "positive integer"),
        ({"lifetime": 169}, "exceeds the configured maximum of 168"),
        ({"tags": "x"}, "tags must be a JSON object"),
        ({"tags": {"bad key!": "x"}}, "Tag name"),
        ({"tags": {"k": "<script>"}}, "invalid characters"),
        ({"colour": "red"}, "Unknown argument 'colour'"),
    ],
)
async def test_modify_rejects_bad_values(api: httpx.Client, store: Store, body: dict[str, Any], words: str) -> None:
    await fill(store, "deb", 1)
    reply = api.put("/api/v3/vm/deb-vm0", json=body)
    assert reply.status_code == 400
    payload = reply.json()
    assert payload["ok"] is False and words in payload["error"] and payload["failure"]
    assert "lifetime" not in await store.vm("deb-vm0")


async def test_modify_reports_every_problem_at_once(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 1)
    reply = api.put("/api/v3/vm/deb-vm0", json={"lifetime": -1, "tags": [], "x": 1})
    assert reply.status_code == 400
    assert len(reply.json()["failure"]) == 3


async def test_return_a_vm(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 2)
    api.post("/vm/deb")
    assert api.delete("/vm/deb-vm0").json() == {"ok": True}
    assert await store.members("deb", VMState.COMPLETED) == {"deb-vm0"}
    second = api.delete("/vm/deb-vm0")
    assert second.status_code == 404 and "not checked out" in second.json()["error"]
    ready = api.delete("/api/v3/vm/deb-vm1")  # a ready VM cannot be "returned"
    assert ready.status_code == 404
    assert await store.members("deb", VMState.READY) == {"deb-vm1"}


async def test_status_reports_every_pool(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 3)
    await fill(store, "cent", 5)
    await fill(store, "win", 2)
    api.post("/vm/deb")
    status = api.get("/status").json()
    assert list(status) == sorted(status)
    assert status["pools"]["deb"] == {
        "ready": 2,
        "running": 1,
        "pending": 0,
        "max": 5,
        "lastBoot": status["pools"]["deb"]["lastBoot"],
        "queue": 0,  # ours: checkouts waiting their turn
        "alias": ["debian"],  # as configured: a list stays a list, a string a string (as the original)
    }
    assert status["pools"]["cent"]["alias"] == "centos"
    assert status["capacity"] == {"current": 9, "total": 12, "percent": 75.0}
    assert status["queue"]["ready"] == 9 and status["queue"]["running"] == 1
    assert status["boot"]["count"]["total"] == 10
    assert status["status"]["ok"] is True
    api.post("/vm/win+win")
    after = api.get("/api/v3/status").json()
    assert after["status"] == {
        "ok": False,
        "message": "Found 1 empty pool.",
        "empty": ["win"],
        "uptime": after["status"]["uptime"],
    }
    assert set(api.get("/status?view=capacity").json()) == {"capacity", "status"}
    assert set(api.get("/status?view=").json()) == {"status"}


async def test_healthcheck_needs_redis_and_a_live_manager(api: httpx.Client, store: Store) -> None:
    lonely = api.get("/healthcheck")
    assert lonely.status_code == 503 and "no pool manager" in lonely.json()["error"]
    await store.heartbeat("m1", "host:1", 20, time.time())
    reply = api.get("/healthcheck")
    assert reply.status_code == 200 and reply.json() == {"ok": True, "redis": True, "managers": 1}
    await store.retire("m1")
    assert api.get("/healthcheck").status_code == 503


async def test_concurrent_http_checkouts_never_share_a_vm(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 40)
    seen: list[str] = []
    lock = threading.Lock()

    def grab(_: int) -> int:
        reply = api.post("/api/v3/vm/deb")
        if reply.status_code == 200:
            with lock:
                seen.append(reply.json()["deb"]["hostname"])
        return reply.status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(grab, range(60)))
    assert codes.count(200) == 40 and codes.count(503) == 20
    assert len(seen) == len(set(seen)) == 40


def test_redis_down_gives_503_json_not_a_hang(tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "doomed")
    settings = settings_with([{"name": "deb", "template": "t", "size": 1}])
    settings.redis.socket_timeout = 1.0
    with ApiThread(settings, redis.port) as server, httpx.Client(base_url=server.url, timeout=15) as client:
        assert client.get("/api/v3/status").status_code == 200
        redis.kill()
        time.sleep(1.1)  # past the status report's one-second cache (api/services/status.py CACHE_SECONDS)
        for path in ("/api/v3/status", "/api/v3/vm/deb-vm0"):
            reply = client.get(path)
            assert reply.status_code == 503
            assert reply.json() == {"ok": False, "error": reply.json()["error"]}
            assert "Redis" in reply.json()["error"]
        assert client.post("/api/v3/vm/deb").status_code == 503
        health = client.get("/healthcheck")
        assert health.status_code == 503 and health.json()["redis"] is False


async def test_poolstat_and_totalrunning(api: httpx.Client, store: Store) -> None:
    await fill(store, "deb", 2)
    await fill(store, "cent", 1)
    api.post("/vm/deb")
    assert api.get("/api/v3/poolstat").json() == {"pools": {}}
    assert api.get("/api/v3/poolstat?pool=nope").json() == {"pools": {}}
    stat = api.get("/api/v3/poolstat?pool=debian,cent").json()  # by alias and by name
    assert stat == {
        "pools": {"deb": {"ready": 1, "max": 5, "alias": ["debian"]}, "cent": {"ready": 1, "max": 5, "alias": "centos"}}
    }
    assert api.get("/api/v3/totalrunning").json() == {"running": 1}


def test_an_oversized_body_is_413(api: httpx.Client) -> None:
    reply = api.post("/api/v3/vm", content=b'{"deb": 1, "x": "' + b"a" * 70_000 + b'"}')
    assert reply.status_code == 413 and reply.json()["ok"] is False


@pytest.mark.parametrize("prefix", ["/api/v2", "/api/v1", ""])
async def test_older_api_versions_answer_in_their_shape(api: httpx.Client, store: Store, prefix: str) -> None:
    await fill(store, "deb", 1)
    body = api.post(f"{prefix}/vm/deb").json()
    if prefix == "/api/v2":
        assert body == {"ok": True, "deb": {"hostname": f"deb-vm0.{DOMAIN}"}}
    else:
        assert body == {"ok": True, "deb": {"hostname": "deb-vm0"}, "domain": DOMAIN}
    assert api.get(f"{prefix}/status").status_code == 200
    assert api.delete(f"{prefix}/vm/deb-vm0").json() == {"ok": True}


def test_backend_weight_spreads_alias_checkouts() -> None:
    import random

    from vmpooler.api.services.vms import weighted_order

    settings, _ = parse_settings(
        {
            "config": {"backend_weight": {"cluster-a": 3, "cluster-b": 1, "cluster-c": 0}},
            "pools": [
                {"name": f"p{c}", "alias": "any", "template": "t", "size": 1, "clone_target": f"cluster-{c}"}
                for c in "abc"
            ],
        },
        env={},
    )
    rng = random.Random(1)
    firsts = [weighted_order(settings, ["pa", "pb", "pc"], rng)[0] for _ in range(2000)]
    assert firsts.count("pc") == 0  # weight 0: only ever a last resort
    assert 0.70 < firsts.count("pa") / 2000 < 0.80  # 3:1
    assert weighted_order(settings, ["pa", "pb", "pc"], rng)[-1] == "pc"


def test_a_hung_redis_gives_503_within_the_timeout_and_recovers(tmp_path: Path) -> None:
    import os
    import signal

    redis = start_redis(tmp_path / "frozen")
    settings = settings_with([{"name": "deb", "template": "t", "size": 1}])
    settings.redis.socket_timeout = 1.0
    try:
        with ApiThread(settings, redis.port) as server, httpx.Client(base_url=server.url, timeout=15) as client:
            assert client.get("/api/v3/status").status_code == 200
            os.kill(redis.process.pid, signal.SIGSTOP)  # alive but silent: the worst case, not a refusal
            started = time.monotonic()
            reply = client.post("/api/v3/vm/deb")
            elapsed = time.monotonic() - started
            assert reply.status_code == 503 and "Redis" in reply.json()["error"]
            assert elapsed < 5, f"took {elapsed:.1f}s: a hung Redis must not hang the API"
            os.kill(redis.process.pid, signal.SIGCONT)
            deadline = time.monotonic() + 10
            while client.get("/api/v3/status").status_code != 200:
                assert time.monotonic() < deadline, "the API did not recover after Redis came back"
                time.sleep(0.2)
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
        redis.kill()


async def test_status_cache_shows_own_changes_at_once_and_others_within_a_second(
    api: httpx.Client, store: Store
) -> None:
    await fill(store, "win", 2)
    assert api.get("/api/v3/status").json()["pools"]["win"]["ready"] == 2
    assert isinstance(await store.checkout([["win"]], time.time()), list)  # someone else's change
    time.sleep(1.1)
    assert api.get("/api/v3/status").json()["pools"]["win"]["ready"] == 1
    assert api.post("/api/v3/vm/win").status_code == 200  # this process's change: shown at once
    assert api.get("/api/v3/status").json()["pools"]["win"]["ready"] == 0

"""Tokens and ownership with the dummy auth backend, over a real socket against a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.config import Settings, parse_settings
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

ALICE = ("alice", "s3cr3t")
BOB = ("bob", "hunter2")


def auth_settings(auth: bool = True) -> Settings:
    raw = {
        "config": {"vm_lifetime_auth": 2},
        "pools": [{"name": "deb", "template": "t/deb", "size": 5}],
        **({"auth": {"provider": "dummy"}} if auth else {}),
    }
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(auth_settings(), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


async def fill(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.create_pending("deb", f"vm{i}", {})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)


def new_token(api: httpx.Client, who: tuple[str, str] = ALICE) -> str:
    reply = api.post("/api/v3/token", auth=who)
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def test_token_routes_need_basic_auth(api: httpx.Client) -> None:
    for method in ("GET", "POST"):
        reply = api.request(method, "/api/v3/token")
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == 'Basic realm="Authentication required"'
        assert reply.json()["ok"] is False
    assert api.post("/token", auth=("same", "same")).status_code == 401  # dummy: user == password fails


def test_create_list_query_and_delete_a_token(api: httpx.Client, redis_port: int) -> None:
    assert api.get("/api/v3/token", auth=ALICE).status_code == 404  # no tokens yet
    token = new_token(api)
    assert len(token) == 32 and token.isalnum() and token.islower() and token[0] != "z"
    listed = api.get("/api/v3/token", auth=ALICE).json()
    assert listed["ok"] is True and len(listed) == 2
    (entry,) = [v for k, v in listed.items() if k != "ok"]
    assert entry["last"] == "never" and entry["created"]
    info = api.get(f"/api/v3/token/{token}").json()[token]
    assert info["user"] == "alice" and info["vms"] == {"running": []}
    # stored hashed: the secret appears in no Redis key or value
    client = redis.Redis(port=redis_port, decode_responses=True)
    for key in client.keys("*"):
        assert token not in key
        if client.type(key) == "hash":
            assert token not in client.hgetall(key).values()
    assert api.delete(f"/api/v3/token/{token}", auth=BOB).status_code == 403  # not bob's
    assert api.delete(f"/api/v3/token/{token}", auth=ALICE).json() == {"ok": True}
    assert api.get(f"/api/v3/token/{token}").status_code == 404
    assert api.delete(f"/api/v3/token/{token}", auth=ALICE).status_code == 404


async def test_token_checkout_sets_owner_and_lifetime(api: httpx.Client, store: Store) -> None:
    await fill(store, 3)
    token = new_token(api)
    reply = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token})
    name = reply.json()["deb"]["hostname"]
    record = await store.vm(name)
    assert record["token:user"] == "alice" and record["lifetime"] == "2"
    assert api.get(f"/api/v3/vm/{name}").json()[name]["lifetime"] == 2
    assert api.get(f"/token/{token}").json()[token]["vms"]["running"] == [name]
    assert api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": "nope"}).status_code == 401
    anonymous = api.post("/api/v3/vm/deb").json()["deb"]["hostname"]
    assert "token:user" not in await store.vm(anonymous)


async def test_only_the_owner_changes_or_returns_a_vm(api: httpx.Client, store: Store) -> None:
    await fill(store, 2)
    alice, bob = new_token(api, ALICE), new_token(api, BOB)
    name = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": alice}).json()["deb"]["hostname"]
    assert api.put(f"/api/v3/vm/{name}", json={"lifetime": 3}).status_code == 401
    assert api.put(f"/api/v3/vm/{name}", json={"lifetime": 3}, headers={"X-AUTH-TOKEN": bob}).status_code == 403
    assert api.put(f"/api/v3/vm/{name}", json={"lifetime": 3}, headers={"X-AUTH-TOKEN": alice}).status_code == 200
    assert api.delete(f"/api/v3/vm/{name}").status_code == 401
    assert api.delete(f"/api/v3/vm/{name}", headers={"X-AUTH-TOKEN": bob}).status_code == 403
    assert name in await store.members("deb", VMState.RUNNING)
    assert api.delete(f"/api/v3/vm/{name}", headers={"X-AUTH-TOKEN": alice}).status_code == 200
    # a VM checked out without a token can be returned without one, even with auth on
    other = api.post("/api/v3/vm/deb").json()["deb"]["hostname"]
    assert api.delete(f"/api/v3/vm/{other}").status_code == 200


async def test_a_token_written_by_the_original_still_works(api: httpx.Client, store: Store, redis_port: int) -> None:
    await fill(store, 1)
    legacy = "utpg2i2xswor6h8ttjhu3d47z53yy47y"
    client = redis.Redis(port=redis_port, decode_responses=True)
    client.hset(keys.token(legacy), mapping={"user": "sschneid", "created": "2015-04-28 19:17:47 -0700"})
    reply = api.post("/vm/deb", headers={"X-AUTH-TOKEN": legacy})
    assert reply.status_code == 200
    assert (await store.vm("vm0"))["token:user"] == "sschneid"
    assert client.hget(keys.token(legacy), "user") == "sschneid", "the original's record stays for the original"
    assert api.get(f"/token/{legacy}").json()[legacy]["user"] == "sschneid"


def test_without_auth_token_routes_are_404_and_tokens_ignored(redis_port: int) -> None:
    with ApiThread(auth_settings(auth=False), redis_port) as server, httpx.Client(base_url=server.url) as client:
        for method, path in (("GET", "/token"), ("POST", "/api/v3/token"), ("GET", "/token/x"), ("DELETE", "/token/x")):
            reply = client.request(method, path, auth=ALICE)
            assert reply.status_code == 404 and "not configured" in reply.json()["error"]

"""Only the clear token authenticates (issue 14.1); the original's clear-text records are shared with it,
never taken over, until `vmpooler migrate-from-ruby --finalize` (issue 15.3)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.config import parse_settings
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

ALICE = ("alice", "s3cr3t")
VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
#: exactly what the original 3.9.1 writes for `POST /token` and a checkout with that token (seen with run.sh)
ORIGINAL_TOKEN = "xvob49xnzmv1z4o9qlqju3opni6yzfpr"
RUBY_TIME = "%Y-%m-%d %H:%M:%S +0000"


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    raw = {"pools": [{"name": "deb", "template": "t/deb", "size": 5}], "auth": {"provider": "dummy"}}
    settings, _ = parse_settings(raw, env={})
    with ApiThread(settings, redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


@pytest.fixture
def r(redis_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_port, decode_responses=True)
    yield client
    client.close()


async def fill(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.create_pending("deb", f"vm{i}", {"pool": "deb"})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)


def dump(r: redis.Redis) -> dict[str, object]:
    return {key: r.hgetall(key) if r.type(key) == "hash" else r.type(key) for key in r.keys("*")}


def write_as_the_original(r: redis.Redis, vm: str | None) -> None:
    """The original's POST /token, then its checkout of ``vm`` (already ready in pool deb) with that token."""
    at = time.strftime(RUBY_TIME, time.gmtime())
    r.hset(keys.token(ORIGINAL_TOKEN), mapping={"user": "alice", "created": at, "last": at})
    if vm is None:
        return
    r.sadd("vmpooler__pools", "deb")
    r.smove("vmpooler__ready__deb", "vmpooler__running__deb", vm)
    r.lrem(keys.ready_queue("deb"), 0, vm)
    fields = {"checkout": at, "token:token": ORIGINAL_TOKEN, "token:user": "alice", "lifetime": "24"}
    r.hset(keys.vm(vm), mapping=fields)


async def test_a_value_read_from_redis_is_never_a_credential(api: httpx.Client, store: Store, r: redis.Redis) -> None:
    await fill(store, 3)
    token = api.post("/api/v3/token", auth=ALICE).json()["token"]
    vm = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token}).json()["deb"]["hostname"]
    stored_hash = hashlib.sha256(token.encode()).hexdigest()
    assert r.exists(keys.token(stored_hash))
    vm_field = r.hget(keys.vm(vm), "token:token")
    assert vm_field and vm_field != token
    before = dump(r)

    for value in {stored_hash, vm_field}:
        headers = {"X-AUTH-TOKEN": value}
        assert api.post("/api/v3/vm/deb", headers=headers).status_code == 401
        assert api.put(f"/api/v3/vm/{vm}", json={"lifetime": 3}, headers=headers).status_code == 401
        assert api.delete(f"/api/v3/vm/{vm}", headers=headers).status_code == 401
        assert api.get(f"/api/v3/token/{value}").status_code == 404
        assert api.delete(f"/api/v3/token/{value}", auth=ALICE).status_code == 404

    assert {k: v for k, v in dump(r).items() if not k.startswith("vmpooler__ratelimit")} == before
    # and the real token still works, as before
    assert api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token}).status_code == 200
    assert api.get(f"/api/v3/token/{token}").json()[token]["user"] == "alice"


async def test_the_originals_token_and_checkouts_work_here_and_stay_for_the_original(
    api: httpx.Client, store: Store, r: redis.Redis
) -> None:
    await fill(store, 3)
    write_as_the_original(r, "vm0")
    original = r.hgetall(keys.token(ORIGINAL_TOKEN))

    info = api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").json()[ORIGINAL_TOKEN]
    assert info["user"] == "alice" and info["vms"]["running"] == ["vm0"], "vmfloaty's list --active reads this"
    reply = api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": ORIGINAL_TOKEN})
    assert reply.status_code == 200
    mine = reply.json()["deb"]["hostname"]
    running = api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").json()[ORIGINAL_TOKEN]["vms"]["running"]
    assert sorted(running) == sorted(["vm0", mine])
    # the owner may return what the original checked out for them
    assert api.delete("/api/v3/vm/vm0", headers={"X-AUTH-TOKEN": ORIGINAL_TOKEN}).status_code == 200

    # the clear record is where the original reads it, as it wrote it, with the last use stamped
    kept = r.hgetall(keys.token(ORIGINAL_TOKEN))
    assert {k: kept[k] for k in ("user", "created")} == {k: original[k] for k in ("user", "created")}
    assert set(kept) == {"user", "created", "last"}

    # the original deletes its token (its DELETE /token/<t>): it stops working here too
    r.delete(keys.token(ORIGINAL_TOKEN))
    assert api.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": ORIGINAL_TOKEN}).status_code == 401
    assert api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").status_code == 404


async def test_deleting_the_originals_token_here_deletes_it_for_the_original(
    api: httpx.Client, store: Store, r: redis.Redis
) -> None:
    write_as_the_original(r, None)
    assert api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").status_code == 200
    assert api.delete(f"/api/v3/token/{ORIGINAL_TOKEN}", auth=ALICE).status_code == 200
    assert not r.exists(keys.token(ORIGINAL_TOKEN))
    assert api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").status_code == 404


async def test_finalize_stores_the_originals_tokens_hashed_only(
    api: httpx.Client, store: Store, r: redis.Redis, redis_port: int, tmp_path: Path
) -> None:
    await fill(store, 2)
    write_as_the_original(r, "vm0")
    assert api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").status_code == 200  # adopted: both copies exist
    config = tmp_path / "vmpooler.yaml"
    config.write_text(yaml.safe_dump({":redis:": {"server": "127.0.0.1", "port": redis_port}}))

    command = [VMPOOLER, "migrate-from-ruby", "--finalize", "-c", str(config)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert "1 token(s) of the original finalized" in done.stdout and ORIGINAL_TOKEN not in done.stdout
    hashed = hashlib.sha256(ORIGINAL_TOKEN.encode()).hexdigest()
    assert not r.exists(keys.token(ORIGINAL_TOKEN))
    assert r.hget(keys.vm("vm0"), "token:token") == hashed
    assert "legacy" not in r.hgetall(keys.token(hashed))
    info = api.get(f"/api/v3/token/{ORIGINAL_TOKEN}").json()[ORIGINAL_TOKEN]
    assert info["vms"]["running"] == ["vm0"]
    assert await store.locate("vm0") == ("deb", VMState.RUNNING)

"""Issue 14, item 3: pool sizes and lifetimes have upper bounds, and numbers stored out of range (by hand,
by an older version) are read defensively: no route answers 500 because of what Redis holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.security.served import fill
from tests.support.pools import dummy, manager_for, run_until, settings_with
from tests.support.servers import ApiThread, RedisProcess, make_store, shared_api_client
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

HUGE = "100000000000000000000"  # 1e20: past what a JSON encoder takes as an integer
READ_ROUTES = [
    "/api/v3/status",
    "/api/v3/config",
    "/api/v3/poolstat?pool=deb",
    "/api/v3/summary",
    "/dashboard/stats/vmpooler/pool?history=true",
    "/dashboard/stats/vmpooler/running",
    "/api/v3/history?range=1h",
    "/api/v3/history?pool=deb&range=1h",
    "/api/v3/totalrunning",
    "/prometheus",
]


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    config = settings_with([{"name": "deb", "template": "t/deb", "size": 5}], experimental_features=True)
    with ApiThread(config, redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    fill(redis_port, "deb", 5)
    with shared_api_client(server) as client:
        yield client


@pytest.mark.parametrize("size", [HUGE, "1000000000000", "10001", 10001, "1e3", 1.5])
def test_a_pool_size_past_the_bound_is_refused(api: httpx.Client, redis_port: int, size: object) -> None:
    reply = api.post("/api/v3/config/poolsize", json={"deb": size})
    assert reply.status_code == 400, reply.text
    assert redis.Redis(port=redis_port).hgetall(keys.CONFIG_POOLSIZE) == {}


def test_the_bound_itself_is_accepted(api: httpx.Client) -> None:
    assert api.post("/api/v3/config/poolsize", json={"deb": "10000"}).status_code == 201


def test_max_pool_size_sets_the_bound(redis_port: int) -> None:
    config = settings_with(
        [{"name": "deb", "template": "t/deb", "size": 2}], experimental_features=True, max_pool_size=50
    )
    with ApiThread(config, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v3/config/poolsize", json={"deb": "51"}).status_code == 400
        assert client.post("/api/v3/config/poolsize", json={"deb": "50"}).status_code == 201


@pytest.mark.parametrize("lifetime", [HUGE, "1e20", 1e20, "87601"])
def test_a_lifetime_past_the_bound_is_refused(api: httpx.Client, lifetime: object) -> None:
    host = api.post("/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
    reply = api.put(f"/api/v3/vm/{host}", json={"lifetime": lifetime})
    assert reply.status_code == 400, reply.text
    assert api.get(f"/api/v3/vm/{host}").status_code == 200


def test_numbers_stored_out_of_range_break_no_route(api: httpx.Client, redis_port: int) -> None:
    host = api.post("/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
    raw = redis.Redis(port=redis_port)
    raw.hset(keys.CONFIG_POOLSIZE, "deb", HUGE)
    raw.hset(keys.vm(host.split(".")[0]), "lifetime", HUGE)
    for i, checkout in enumerate(("1e300", "nan", "-inf")):
        # another VM each, checked out at a time that is no time
        other = api.post("/api/v3/vm", json={"deb": 1}).json()["deb"]["hostname"]
        raw.hset(keys.vm(other.split(".")[0]), mapping={"checkout": checkout, "lifetime": str(-i)})
        assert api.get(f"/api/v3/vm/{other}").status_code == 200, checkout

    async def store_history_point() -> None:
        store = make_store(redis_port)
        minute = int(time.time() // 60 * 60) - 60
        await store.history.add("deb", "1m", {"t": minute, "ready": int(HUGE), "size": int(HUGE), "running": 0})
        await store.close()

    asyncio.run(store_history_point())
    for path in [*READ_ROUTES, f"/api/v3/vm/{host}"]:
        reply = api.get(path)
        assert reply.status_code == 200, (path, reply.status_code, reply.text[:300])
    assert api.get("/api/v3/poolstat?pool=deb").json()["pools"]["deb"]["max"] == 10_000
    assert api.get(f"/api/v3/vm/{host}").json()[host.split(".")[0]]["lifetime"] == 87_600
    undo = api.delete("/api/v3/config/poolsize/deb")
    assert undo.status_code == 201 and undo.json()["pool_size_before_reset"] == 10_000


async def test_the_manager_never_clones_past_the_bound(store: Store, redis_port: int, inventory_file: Path) -> None:
    settings = settings_with([{"name": "deb", "template": "t/deb", "size": 1}], max_pool_size=3)
    await store.overrides.set("size", {"deb": "1000000000000"})
    manager = manager_for(settings, store, dummy(inventory_file))

    async def three_ready() -> bool:
        return len((await store.all_members("deb"))[VMState.READY]) == 3

    await run_until(manager, three_ready)
    for _ in range(5):
        await manager.run_once()
    members = await store.all_members("deb")
    assert len(members[VMState.READY] | members[VMState.PENDING]) == 3

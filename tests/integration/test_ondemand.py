"""On-demand requests end to end: the API records them, the manager serves them (reference §5 Ondemand)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pools import dummy, manager_for, run_until
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.config import Settings, parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store.redis import Store


def od_settings(size: int = 0, **config: Any) -> Settings:
    raw = {
        "config": {"max_ondemand_instances_per_request": 3, "check_loop_delay_min": 0.05, **config},
        "dns_configs": {"ex": {"domain": "od.example"}},
        "pools": [
            {"name": "deb", "alias": ["debian"], "template": "t/deb", "size": size, "dns_plugin": "ex"},
            {"name": "cent", "template": "t/cent", "size": size, "dns_plugin": "ex"},
        ],
    }
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(od_settings(), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


def poll(api: httpx.Client, rid: str) -> httpx.Response:
    return api.get(f"/api/v3/ondemandvm/{rid}")


async def until_ready(manager: Manager, api: httpx.Client, rid: str) -> dict[str, Any]:
    async def ready() -> bool:
        return poll(api, rid).status_code == 200

    await run_until(manager, ready, timeout=30)
    body: dict[str, Any] = poll(api, rid).json()
    return body


async def test_request_is_cloned_and_delivered(api: httpx.Client, store: Store, inventory_file: Path) -> None:
    manager = manager_for(od_settings(), store, dummy(inventory_file))
    reply = api.post("/api/v3/ondemandvm", json={"debian": "2", "cent": 1})
    assert reply.status_code == 201
    rid = reply.json()["request_id"]
    waiting = poll(api, rid)
    assert waiting.status_code == 202
    assert waiting.json() == {
        "ok": True,
        "request_id": rid,
        "ready": False,
        "debian": {"ready": "0", "pending": "2"},
        "cent": {"ready": "0", "pending": "1"},
    }
    body = await until_ready(manager, api, rid)
    assert body["ready"] is True and len(body["debian"]["hostname"]) == 2 and len(body["cent"]["hostname"]) == 1
    assert all(h.endswith(".od.example") for h in body["debian"]["hostname"])
    name = body["cent"]["hostname"][0].split(".")[0]
    assert await store.locate(name) == ("cent", VMState.RUNNING)
    record = await store.vm(name)
    assert record["request_id"] == rid and record["pool_alias"] == "cent" and record["checkout"]
    # the pools were raised only while the request needed them: size 0, nothing else stays ready
    await manager.run_once()
    await run_until(manager, lambda: _no_ready(store))


async def _no_ready(store: Store) -> bool:
    counts = await store.counts(["deb", "cent"])
    return counts["deb"][VMState.READY] + counts["cent"][VMState.READY] == 0


async def test_ready_vms_serve_a_request_first(api: httpx.Client, store: Store, inventory_file: Path) -> None:
    manager = manager_for(od_settings(size=2), store, dummy(inventory_file))

    async def full() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2

    await run_until(manager, full)
    ready_before = await store.members("deb", VMState.READY)
    rid = api.post("/api/v3/ondemandvm/deb+deb").json()["request_id"]
    await manager.ondemand.run_once()
    body = poll(api, rid).json()
    assert body["ready"] is True
    assert {h.split(".")[0] for h in body["deb"]["hostname"]} == ready_before


def test_request_validation(api: httpx.Client) -> None:
    too_many = api.post("/api/v3/ondemandvm", json={"deb": "4"})
    assert too_many.status_code == 403
    assert too_many.json()["message"] == "requested amount of instances exceeds the maximum 3"
    unknown = api.post("/api/v3/ondemandvm", json={"nope": "1"})
    assert unknown.status_code == 404 and unknown.json()["bad_templates"] == ["nope"]
    assert api.post("/api/v3/ondemandvm", content=b"{oops").status_code == 400
    assert api.post("/api/v3/ondemandvm", json={"deb": "1", "request_id": "1234"}).status_code == 201
    dup = api.post("/api/v3/ondemandvm", json={"deb": "1", "request_id": "1234"})
    assert dup.status_code == 409
    assert dup.json()["message"] == "request_id '1234' has already been created" and dup.json()["request_id"] == "1234"
    missing = api.get("/api/v3/ondemandvm/nope")
    assert missing.status_code == 404 and missing.json()["message"] == "no request found for request_id 'nope'"
    assert api.delete("/api/v3/ondemandvm/nope").status_code == 404


async def test_delete_returns_the_vms(api: httpx.Client, store: Store, inventory_file: Path) -> None:
    manager = manager_for(od_settings(), store, dummy(inventory_file))
    rid = api.post("/api/v3/ondemandvm", json={"deb": "1"}).json()["request_id"]
    body = await until_ready(manager, api, rid)
    name = body["deb"]["hostname"][0].split(".")[0]
    assert api.delete(f"/api/v3/ondemandvm/{rid}").json() == {"ok": True}
    assert await store.locate(name) == ("deb", VMState.COMPLETED)
    again = api.delete(f"/api/v3/ondemandvm/{rid}")
    assert again.status_code == 200 and again.json()["message"] == "the request has already been deleted"
    gone = poll(api, rid).json()
    assert gone == {"ok": True, "request_id": rid, "ready": False, "message": "The request has been deleted"}


async def test_request_past_its_ttl_fails_and_releases_vms(
    api: httpx.Client, store: Store, inventory_file: Path
) -> None:
    manager = manager_for(od_settings(), store, dummy(inventory_file, ready_delay=3600))
    rid = api.post("/api/v3/ondemandvm", json={"deb": "1"}).json()["request_id"]
    await manager.run_once()
    await store.ondemand.update(rid, {"created": "2000-01-01 00:00:00 +0000"})
    await manager.ondemand.run_once()
    body = poll(api, rid).json()
    assert body["ready"] is False and "ondemand_request_ttl '5'" in body["message"]
    assert await store.ondemand.total_demand() == 0


async def test_repeated_clone_failures_fail_the_request(api: httpx.Client, store: Store, inventory_file: Path) -> None:
    manager = manager_for(od_settings(max_vm_retries=1), store, dummy(inventory_file, createvm_fail_percent=100))
    rid = api.post("/api/v3/ondemandvm", json={"cent": "1"}).json()["request_id"]

    async def failed() -> bool:
        return "message" in poll(api, rid).json()

    await run_until(manager, failed, timeout=30)
    assert "max_vm_retries" in poll(api, rid).json()["message"]


def test_ondemand_needs_a_token_when_auth_is_on(redis_port: int) -> None:
    settings = od_settings()
    settings.auth = {"provider": "dummy"}
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v3/ondemandvm", json={"deb": "1"}).status_code == 401
        token = client.post("/api/v3/token", auth=("amy", "pw")).json()["token"]
        created = client.post("/api/v3/ondemandvm", json={"deb": "1"}, headers={"X-AUTH-TOKEN": token})
        assert created.status_code == 201
        rid = created.json()["request_id"]
        other = client.post("/api/v3/token", auth=("bo", "pw")).json()["token"]
        assert client.delete(f"/api/v3/ondemandvm/{rid}", headers={"X-AUTH-TOKEN": other}).status_code == 403
        assert client.delete(f"/api/v3/ondemandvm/{rid}", headers={"X-AUTH-TOKEN": token}).status_code == 200
    assert time.time() > 0


async def test_a_running_manager_with_settled_pools_serves_a_request(
    api: httpx.Client, store: Store, inventory_file: Path
) -> None:
    # quiet passes read nothing of a settled pool: the demand the provisioner raises must wake it
    settings = od_settings(check_loop_delay_min=0.25, check_loop_delay_max=0.25)
    manager = Manager(
        settings, store, {"dummy": dummy(inventory_file)}, ready_poll_interval=0.02, history_wait=lambda _: 3600.0
    )
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:
        deadline = time.monotonic() + 10
        while sum(r.passes - r.full_passes for r in manager.reconcilers.values()) < 4:  # settled, passing quietly
            assert time.monotonic() < deadline, "the empty pools never settled"
            await asyncio.sleep(0.1)
        rid = api.post("/api/v3/ondemandvm", json={"cent": 1}).json()["request_id"]
        # well before the 30 quiet passes (7.5 s here) after which a settled pool is read anyway
        deadline = time.monotonic() + 5
        while poll(api, rid).status_code != 200:
            assert time.monotonic() < deadline, "the request was not served"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

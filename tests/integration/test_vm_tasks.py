"""Snapshots and disks: queued by the API (202), carried out by the manager through the provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.pools import dummy, manager_for, run_until, settings_with
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.states import VMState
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "t/deb", "size": 1}


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(settings_with([POOL]), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


async def test_snapshot_revert_and_disk_reach_the_provider(
    api: httpx.Client, store: Store, inventory_file: Path
) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(settings_with([POOL]), store, provider)

    async def one_ready() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 1

    await run_until(manager, one_ready)
    name = api.post("/api/v3/vm/deb").json()["deb"]["hostname"]
    reply = api.post(f"/api/v3/vm/{name}/snapshot")
    assert reply.status_code == 202
    snapshot = reply.json()[name]["snapshot"]
    assert len(snapshot) == 32
    disk = api.post(f"/api/v3/vm/{name}/disk/8")
    assert disk.status_code == 202 and disk.json() == {"ok": True, name: {"disk": "+8gb"}}
    assert await manager.tasks.run_once() == 2
    info = api.get(f"/api/v3/vm/{name}").json()[name]
    assert info["snapshots"] == [snapshot] and info["disk"] == ["+8gb"]
    vm = await provider.get_vm(manager.reconcilers["deb"].ctx.target, name)
    assert vm is not None and snapshot in vm.extra["snapshots"] and vm.extra["disks"]
    assert api.post(f"/api/v3/vm/{name}/snapshot/{snapshot}").status_code == 202
    assert await manager.tasks.run_once() == 1
    assert "revert_error" not in await store.vm(name)


async def test_a_task_taken_by_a_dead_manager_is_requeued(store: Store) -> None:
    await store.tasks.add("disk", "vm1", "4")
    assert await store.tasks.take("disk", now=100.0) == ("vm1", "4")
    assert await store.tasks.take("disk", now=100.0) is None
    assert await store.tasks.requeue_stale("disk", older_than=200.0) == 1
    assert await store.tasks.take("disk", now=300.0) == ("vm1", "4")


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/v3/vm/ghost/snapshot", 404, "no VM named"),
        ("/api/v3/vm/ghost/disk/8", 404, "no VM named"),
        ("/api/v3/vm/any/disk/0", 400, "Disk size must be a valid integer"),
        ("/api/v3/vm/any/disk/4096", 400, "Disk size must be a valid integer"),
        ("/api/v3/vm/any/disk/big", 400, "Disk size must be a valid integer"),
    ],
)
def test_bad_task_requests(api: httpx.Client, path: str, status: int, words: str) -> None:
    reply = api.post(path)
    assert reply.status_code == status and words in reply.json()["error"]


async def test_revert_of_an_unknown_snapshot_is_404(api: httpx.Client, store: Store) -> None:
    await store.create_pending("deb", "vm1", {})
    await store.mark_ready("deb", "vm1", time.time(), 1.0)
    assert await store.checkout([["deb"]], time.time()) == [("deb", "vm1")]
    reply = api.post("/api/v3/vm/vm1/snapshot/0123456789abcdef0123456789abcdef")
    assert reply.status_code == 404 and "no snapshot" in reply.json()["error"]

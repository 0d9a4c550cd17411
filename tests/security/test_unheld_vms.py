"""Hands off VMs nobody holds (issue 14.10): only an admin changes a VM that is not checked out, and tags
are capped per VM (count, name and value length) with a 400 that states the limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import ApiThread
from vmpooler.config import parse_settings
from vmpooler.store.redis import Store

ALICE, ROOT = ("alice", "s3cr3t"), ("root", "hunter2")


def start(redis_port: int, auth: bool = True, **config: Any) -> ApiThread:
    raw: dict[str, Any] = {"pools": [{"name": "deb", "template": "t/deb", "size": 5}], "config": config}
    if auth:
        raw["auth"] = {"provider": "dummy", "admins": ["root"]}
    return ApiThread(parse_settings(raw, env={})[0], redis_port)


@pytest.fixture
def api(redis_port: int) -> Iterator[httpx.Client]:
    with start(redis_port, max_tags_per_vm=3) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


async def fill(store: Store, count: int) -> None:
    for i in range(count):
        assert await store.create_pending("deb", f"vm{i}", {"pool": "deb"})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)


def token(api: httpx.Client, who: tuple[str, str]) -> dict[str, str]:
    return {"X-AUTH-TOKEN": api.post("/api/v3/token", auth=who).json()["token"]}


async def test_only_an_admin_changes_a_ready_vm(api: httpx.Client, store: Store) -> None:
    await fill(store, 1)
    alice, root = token(api, ALICE), token(api, ROOT)
    before = await store.vm("vm0")
    for headers in ({}, alice):
        for body in ({"tags": {"team": "evil"}}, {"lifetime": 1}):
            reply = api.put("/api/v3/vm/vm0", json=body, headers=headers)
            assert reply.status_code in (401, 403) and reply.json()["ok"] is False, reply.text
    assert "only an admin may change it" in api.put("/api/v3/vm/vm0", json={"lifetime": 1}, headers=alice).text
    for task in ("snapshot", "disk/8"):  # a snapshot or a disk would be handed to the next user too
        assert api.post(f"/api/v3/vm/vm0/{task}", headers=alice).status_code == 403
    assert await store.vm("vm0") == before
    assert await store.tasks.take("disk", now=time.time()) is None

    assert api.put("/api/v3/vm/vm0", json={"tags": {"team": "ops"}}, headers=root).status_code == 200
    checked_out = api.post("/api/v3/vm/deb", headers=alice).json()["deb"]["hostname"]
    assert api.get(f"/api/v3/vm/{checked_out}").json()[checked_out]["tags"] == {"team": "ops"}
    # once checked out, the holder changes it as before
    assert api.put(f"/api/v3/vm/{checked_out}", json={"lifetime": 3}, headers=alice).status_code == 200


async def test_without_auth_a_ready_vm_cannot_be_changed(redis_port: int, store: Store) -> None:
    await fill(store, 1)
    with start(redis_port, auth=False) as server, httpx.Client(base_url=server.url, timeout=10) as api:
        reply = api.put("/api/v3/vm/vm0", json={"tags": {"team": "qa"}})
        assert reply.status_code == 403 and "not checked out" in reply.json()["error"]
        name = api.post("/api/v3/vm/deb").json()["deb"]["hostname"]
        assert api.put(f"/api/v3/vm/{name}", json={"tags": {"team": "qa"}}).status_code == 200


async def test_tags_are_capped_with_the_limit_in_the_reply(api: httpx.Client, store: Store) -> None:
    await fill(store, 1)
    alice = token(api, ALICE)
    name = api.post("/api/v3/vm/deb", headers=alice).json()["deb"]["hostname"]

    def put(tags: dict[str, str]) -> httpx.Response:
        return api.put(f"/api/v3/vm/{name}", json={"tags": tags}, headers=alice)

    too_many = put({f"t{i}": "x" for i in range(4)})
    assert too_many.status_code == 400 and "at most 3" in too_many.json()["error"]
    assert put({"a": "1", "b": "2"}).status_code == 200
    assert put({"a": "changed"}).status_code == 200  # changing a tag adds none
    adding_up = put({"c": "3", "d": "4"})
    assert adding_up.status_code == 400 and "at most 3 (this one would have 4)" in adding_up.json()["error"]
    long_name = put({"n" * 51: "x"})
    assert long_name.status_code == 400 and "must be 1-50" in long_name.json()["error"]
    long_value = put({"c": "v" * 256})
    assert long_value.status_code == 400 and "exceeds 255 characters" in long_value.json()["error"]
    assert api.get(f"/api/v3/vm/{name}").json()[name]["tags"] == {"a": "changed", "b": "2"}

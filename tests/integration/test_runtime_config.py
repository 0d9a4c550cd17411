"""Run-time configuration through the API, and the manager acting on it (reference §5 config endpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.pools import dummy, manager_for, run_until
from tests.support.servers import ApiThread, RedisProcess, shared_api_client
from vmpooler.config import Settings, parse_settings
from vmpooler.states import VMState
from vmpooler.store.redis import Store

TOKEN = {"X-AUTH-TOKEN": ""}


def config_settings(experimental: bool = True, auth: bool = False) -> Settings:
    raw = {
        "config": {"experimental_features": experimental, "check_loop_delay_min": 0.05},
        "providers": {"vsphere_like": {"provider_class": "dummy", "password": "hunter2"}},
        "redis": {"server": "127.0.0.1", "password": "redis-secret"},
        "pools": [
            {"name": "deb", "template": "templates/deb", "size": 2, "provider": "dummy"},
            {"name": "win", "template": "templates/win", "size": 1, "clone_target": "cluster1", "provider": "dummy"},
        ],
        **({"auth": {"provider": "dummy"}} if auth else {}),
    }
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture(scope="module")
def server(redis_server: RedisProcess) -> Iterator[ApiThread]:
    with ApiThread(config_settings(), redis_server.port) as server:
        yield server


@pytest.fixture
def api(server: ApiThread, redis_port: int) -> Iterator[httpx.Client]:
    with shared_api_client(server) as client:
        yield client


def test_write_routes_are_405_without_experimental_features(redis_port: int) -> None:
    with ApiThread(config_settings(experimental=False), redis_port) as server, httpx.Client(base_url=server.url) as c:
        for path in ("/api/v3/config/poolsize", "/api/v3/config/pooltemplate", "/api/v3/poolreset"):
            reply = c.post(path, json={"deb": "1"})
            assert reply.status_code == 405 and "experimental_features" in reply.json()["error"]
        assert c.get("/api/v3/config").status_code == 200  # reading is always allowed


def test_write_routes_need_a_token_when_auth_is_on(redis_port: int) -> None:
    with ApiThread(config_settings(auth=True), redis_port) as server, httpx.Client(base_url=server.url) as c:
        assert c.post("/api/v3/config/poolsize", json={"deb": "3"}).status_code == 401
        token = c.post("/api/v3/token", auth=("ops", "pw")).json()["token"]
        reply = c.post("/api/v3/config/poolsize", json={"deb": "3"}, headers={"X-AUTH-TOKEN": token})
        assert reply.status_code == 201


def test_pool_size_override_and_undo(api: httpx.Client) -> None:
    assert api.post("/api/v3/config/poolsize", json={"deb": "5"}).status_code == 201
    assert api.post("/api/v3/config/poolsize", json={"deb": "5"}).status_code == 200  # nothing changed
    pools = {p["name"]: p for p in api.get("/api/v3/config").json()["pool_configuration"]}
    assert pools["deb"]["size"] == 5
    undo = api.delete("/api/v3/config/poolsize/deb")
    assert undo.status_code == 201
    assert undo.json() == {"ok": True, "pool_size_before_reset": 5, "pool_size_before_overrides": 2}
    assert list(undo.json()) == ["ok", "pool_size_before_reset", "pool_size_before_overrides"]
    assert api.delete("/api/v3/config/poolsize/deb").status_code == 200
    assert api.delete("/api/v3/config/poolsize/nope").status_code == 404


@pytest.mark.parametrize("body", [{"nope": "1"}, {"deb": "-1"}, {"deb": "x"}, {"deb": "1", "nope": "2"}])
def test_pool_size_rejects_bad_input(api: httpx.Client, body: dict[str, str]) -> None:
    reply = api.post("/api/v3/config/poolsize", json=body)
    assert reply.status_code == 400
    assert reply.json()["not_configured"] and len(set(reply.json()["not_configured"])) == len(
        reply.json()["not_configured"]
    )


@pytest.mark.parametrize(
    "path",
    ["/api/v3/config/poolsize", "/api/v3/config/pooltemplate", "/api/v3/poolreset", "/api/v3/config/clonetarget"],
)
def test_invalid_json_is_400_not_500(api: httpx.Client, path: str) -> None:
    for body in (b"{not json", b"[]", b""):
        reply = api.post(path, content=body)
        assert reply.status_code == 400, (path, body, reply.text)
        assert reply.json()["ok"] is False


def test_template_and_clone_target_overrides(api: httpx.Client) -> None:
    assert api.post("/api/v3/config/pooltemplate", json={"deb": "templates/deb-2"}).status_code == 201
    assert api.post("/api/v3/config/pooltemplate", json={"nope": "a/b"}).json()["bad_templates"] == ["nope"]
    undo = api.delete("/api/v3/config/pooltemplate/deb").json()
    assert undo == {
        "ok": True,
        "template_before_reset": "templates/deb-2",
        "template_before_overrides": "templates/deb",
    }
    assert api.post("/api/v3/config/clonetarget", json={"win": "cluster2"}).status_code == 201
    assert api.post("/api/v3/config/clonetarget", json={"win": "cluster2"}).status_code == 200
    assert api.post("/api/v3/config/clonetarget", json={"nope": "c"}).status_code == 400
    assert api.post("/api/v3/poolreset", json={"nope": "1"}).json()["bad_pools"] == ["nope"]
    assert api.post("/api/v3/poolreset", json={"deb": "1"}).status_code == 201


def test_full_config_serves_no_secret(api: httpx.Client) -> None:
    text = api.get("/api/v3/full_config").text
    assert "hunter2" not in text and "redis-secret" not in text
    served = api.get("/api/v3/full_config").json()["full_config"]
    # a provider's own keys are not served at all (tests/security/test_redaction.py has the rest)
    assert served["providers"]["vsphere_like"] == {"provider_class": "dummy"} and "redis" not in served


async def test_manager_applies_overrides_and_resets(api: httpx.Client, store: Store, inventory_file: Path) -> None:
    provider = dummy(inventory_file)
    manager = manager_for(config_settings(), store, provider)

    async def levels(deb: int, win: int) -> bool:
        counts = await store.counts(["deb", "win"])
        return counts["deb"][VMState.READY] == deb and counts["win"][VMState.READY] == win

    await run_until(manager, lambda: levels(2, 1))
    api.post("/api/v3/config/poolsize", json={"deb": "4"})
    await run_until(manager, lambda: levels(4, 1))
    api.delete("/api/v3/config/poolsize/deb")
    await run_until(manager, lambda: levels(2, 1))
    old_win = await store.members("win", VMState.READY)
    api.post("/api/v3/config/clonetarget", json={"win": "cluster2"})

    async def win_rebuilt() -> bool:
        ready = await store.members("win", VMState.READY)
        return len(ready) == 1 and not (ready & old_win)

    await run_until(manager, win_rebuilt)
    old_deb = await store.members("deb", VMState.READY)
    api.post("/api/v3/poolreset", json={"deb": "1"})

    async def deb_reset() -> bool:
        ready = await store.members("deb", VMState.READY)
        return len(ready) == 2 and not (ready & old_deb)

    await run_until(manager, deb_reset)
    # a restart does not drain again: the prepared template and clone target are remembered
    restarted = manager_for(config_settings(), store, provider)
    before = await store.members("win", VMState.READY)
    await restarted.run_once()
    assert await store.members("win", VMState.READY) == before

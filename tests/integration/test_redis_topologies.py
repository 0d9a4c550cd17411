"""The Store against real Redis set-ups beyond one plain server: Sentinel (with a failover), ACL, TLS;
and `vmpooler api` + `vmpooler manager` against a Sentinel group."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.support.certs import TlsFiles, make_tls_files
from tests.support.redis_topologies import (
    ACL_PASSWORD,
    ACL_USER,
    SentinelGroup,
    start_acl_redis,
    start_sentinel_group,
    start_tls_redis,
)
from tests.support.servers import RedisProcess, wait_for_port
from vmpooler.config import parse_settings
from vmpooler.errors import StoreError, StoreUnavailable
from vmpooler.runtime import open_store
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


def store_for(redis_section: dict[str, Any], state_dir: Path) -> Store:
    """The Store exactly as `vmpooler serve|api|manager` builds it from a configuration."""
    settings, _ = parse_settings({"redis": redis_section}, env={})
    store, embedded = open_store(settings, state_dir)
    assert embedded is None, "a configured Redis must not start the embedded one"
    return store


async def pending(store: Store, pool: str = "p") -> set[str]:
    return await store.members(pool, VMState.PENDING)


# --- Sentinel -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """Shared by the tests that leave the topology as it is; the failover test makes its own."""
    group = start_sentinel_group(tmp_path_factory.mktemp("sentinel"))
    yield group
    group.stop()


@pytest.fixture
async def sentinel_store(sentinel_group: SentinelGroup, tmp_path: Path) -> AsyncIterator[Store]:
    with redis.Redis(port=sentinel_group.master.port) as client:
        client.flushall()
    store = store_for(sentinel_group.redis_section(), tmp_path)
    yield store
    await store.close()


async def test_a_store_configured_with_sentinels_reads_and_writes_on_the_master(
    sentinel_group: SentinelGroup, sentinel_store: Store
) -> None:
    assert await sentinel_store.create_pending("p", "vm1", {"clone": "t"})
    assert await pending(sentinel_store) == {"vm1"}
    # it went to the master the sentinel names, and replicated from there
    with redis.Redis(port=sentinel_group.master.port, decode_responses=True) as master:
        assert master.sismember(keys.state_set(VMState.PENDING, "p"), "vm1")
        assert master.execute_command("WAIT", 1, 2000) == 1
    with redis.Redis(port=sentinel_group.replica.port, decode_responses=True) as replica:
        assert replica.sismember(keys.state_set(VMState.PENDING, "p"), "vm1")


async def test_a_master_name_the_sentinels_do_not_know_is_a_clear_unavailable_error(
    sentinel_group: SentinelGroup, tmp_path: Path
) -> None:
    store = store_for({**sentinel_group.redis_section(), "master_name": "nosuchmaster"}, tmp_path)
    try:
        with pytest.raises(StoreUnavailable, match=r"Redis Sentinel: No master found for 'nosuchmaster'") as caught:
            await store.ping()
    finally:
        await store.close()
    assert len(str(caught.value)) < 200, "no client reprs in an operator's message"


async def test_the_same_store_follows_a_failover_after_the_master_is_killed(tmp_path: Path) -> None:
    group = start_sentinel_group(tmp_path / "group")
    store = store_for(group.redis_section(), tmp_path / "state")
    try:
        assert await store.create_pending("p", "before", {})
        with redis.Redis(port=group.master.port) as master:
            assert master.execute_command("WAIT", 1, 1000) == 1, "the replica must hold the write before the kill"

        group.master.kill()  # SIGKILL: no goodbye to the replica or the sentinel
        killed = time.monotonic()
        last_error: StoreError | None = None
        while time.monotonic() - killed < 15:
            try:
                assert await store.create_pending("p", "after", {})
                break
            except StoreUnavailable as exc:  # the API answers 503 meanwhile; the manager pauses
                last_error = exc
                await asyncio.sleep(0.2)
        else:
            pytest.fail(f"no write succeeded within 15 s of the master's death; last error: {last_error}")
        recovered = time.monotonic() - killed

        assert last_error is not None, "writes cannot have succeeded while no master existed"
        assert group.master_port() == group.replica.port, "the sentinel promoted the replica"
        assert await pending(store) == {"before", "after"}
        print(f"writes resumed {recovered:.1f} s after kill -9 of the master")
    finally:
        await store.close()
        group.stop()


# --- ACL ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = start_acl_redis(tmp_path_factory.mktemp("acl"))
    yield server
    server.stop()


async def test_an_acl_user_with_its_password_can_use_the_store(acl_redis: RedisProcess, tmp_path: Path) -> None:
    section = {"server": "127.0.0.1", "port": acl_redis.port, "username": ACL_USER, "password": ACL_PASSWORD}
    store = store_for(section, tmp_path)
    try:
        assert await store.create_pending("p", "vm1", {})
        assert await pending(store) == {"vm1"}
    finally:
        await store.close()


@pytest.mark.parametrize("password", ["wrong", None])
async def test_bad_credentials_are_a_store_error_that_names_the_settings(
    acl_redis: RedisProcess, tmp_path: Path, password: str | None
) -> None:
    section = {"server": "127.0.0.1", "port": acl_redis.port, "username": ACL_USER, "password": password}
    store = store_for(section, tmp_path)
    try:
        with pytest.raises(StoreError) as caught:
            await store.ping()
    finally:
        await store.close()

    # not "unreachable": waiting will not fix a password
    assert not isinstance(caught.value, StoreUnavailable)
    message = str(caught.value)
    assert "redis.username and redis.password" in message, message
    assert "WRONGPASS" in message or "NOAUTH" in message or "invalid" in message, message


# --- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[RedisProcess]:
    try:
        server = start_tls_redis(tmp_path_factory.mktemp("tls"), tls_files)
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server has no TLS support: {exc}")
        raise
    yield server
    server.stop()


async def test_a_tls_store_trusting_the_ca_works(tls_redis: RedisProcess, tls_files: TlsFiles, tmp_path: Path) -> None:
    section = {"server": "127.0.0.1", "port": tls_redis.port, "tls": True, "tls_ca_file": str(tls_files.ca)}
    store = store_for(section, tmp_path)
    try:
        assert await store.create_pending("p", "vm1", {})
        assert await pending(store) == {"vm1"}
    finally:
        await store.close()


async def test_tls_verification_without_the_ca_fails_with_a_clear_store_error(
    tls_redis: RedisProcess, tmp_path: Path
) -> None:
    store = store_for({"server": "127.0.0.1", "port": tls_redis.port, "tls": True, "tls_verify": True}, tmp_path)
    try:
        with pytest.raises(StoreError) as caught:
            await store.ping()
    finally:
        await store.close()

    message = str(caught.value)
    assert not isinstance(caught.value, StoreUnavailable)
    assert "TLS with Redis failed" in message and "redis.tls_ca_file" in message, message
    assert "CERTIFICATE_VERIFY_FAILED" in message, message


async def test_a_plain_client_cannot_talk_to_a_tls_only_redis(tls_redis: RedisProcess, tmp_path: Path) -> None:
    store = store_for({"server": "127.0.0.1", "port": tls_redis.port, "socket_timeout": 1}, tmp_path)
    try:
        with pytest.raises(StoreError):
            await store.ping()
    finally:
        await store.close()


# --- the commands, unchanged, against a Sentinel group --------------------------------------------------


@pytest.mark.slow
def test_vmpooler_api_and_manager_run_against_a_sentinel_group(sentinel_group: SentinelGroup, tmp_path: Path) -> None:
    with redis.Redis(port=sentinel_group.master.port) as client:
        client.flushall()
    config = {
        ":redis:": sentinel_group.redis_section(),
        ":providers:": {":dummy:": {"filename": str(tmp_path / "inventory.json"), "ready_delay": 0.2}},
        ":config:": {"check_loop_delay_min": 0.2, "check_loop_delay_max": 1},
        ":pools:": [{"name": "alpha", "template": "templates/alpha", "size": 2}],
    }
    path = tmp_path / "vmpooler.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    common = ["-c", str(path), "--state-dir", str(tmp_path / "state")]
    logs = [(tmp_path / f"{name}.log").open("wb") for name in ("api", "manager")]
    api = subprocess.Popen(
        [VMPOOLER, "api", *common, "--host", "127.0.0.1", "--port", str(port)], stdout=logs[0], stderr=subprocess.STDOUT
    )
    manager = subprocess.Popen([VMPOOLER, "manager", *common], stdout=logs[1], stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, api, timeout=30)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        ready = -1
        while time.monotonic() < deadline and ready != 2:
            status = httpx.get(f"{url}/api/v3/status", timeout=10)
            assert status.status_code == 200
            ready = status.json()["pools"]["alpha"]["ready"]
            time.sleep(0.2)
        assert ready == 2, status.json()
        health = httpx.get(f"{url}/healthcheck", timeout=10)
        assert health.status_code == 200 and health.json()["managers"] == 1
        with redis.Redis(port=sentinel_group.master.port, decode_responses=True) as master:
            assert master.scard(keys.state_set(VMState.READY, "alpha")) == 2, "the data lives on the sentinel's master"
        assert not (tmp_path / "state" / "redis").exists(), "no embedded Redis was started"
    finally:
        for process in (api, manager):
            process.terminate()
        codes = [process.wait(30) for process in (api, manager)]
        for log in logs:
            log.close()
    assert codes == [0, 0], [(tmp_path / f"{n}.log").read_text()[-2000:] for n in ("api", "manager")]

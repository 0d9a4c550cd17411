"""Pools kept in Redis (``vmpooler__pools``) are served when the configuration has no ``:pools:``, and kept."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.config import parse_settings, pools_from_records
from vmpooler.store import keys
from vmpooler.store.redis import Store

#: as the original's manager publishes a pool: every key a string, the aliases joined with commas
ORIGINAL_RECORD = {
    "name": "stored",
    "template": "Templates/stored",
    "size": "2",
    "alias": "keep,kept",
    "provider": "dummy",
    "timeout": "15",
    "ready_ttl": "1440",
    "dns_plugin": "example",
    "domain": "example.com",
}


def test_records_read_as_the_original_writes_them() -> None:
    pools, problems = pools_from_records({"stored": ORIGINAL_RECORD, "broken": {"template": "t", "size": "many"}})
    assert [p.name for p in pools] == ["stored"]
    assert (pools[0].size, pools[0].alias, pools[0].domain) == (2, ["keep", "kept"], "example.com")
    assert len(problems) == 1 and problems[0].startswith("redis.vmpooler__pool__broken.size:")


def test_a_config_without_pools_says_where_they_come_from() -> None:
    settings, _ = parse_settings({"config": {}}, env={})
    assert not settings.pools_configured
    assert parse_settings({"pools": []}, env={})[0].pools_configured  # an empty list is a configuration


async def test_registering_keeps_pools_the_config_did_not_write(store: Store) -> None:
    await store.client.sadd(keys.POOLS, "operators")
    await store.client.hset(keys.pool("operators"), mapping={"template": "t", "size": "1"})
    await store.register_pools({"deb": {"template": "t/deb", "size": "3"}})
    assert await store.client.smembers(keys.POOLS) == {"operators", "deb"}
    assert await store.client.hgetall(keys.pool("operators")) == {"template": "t", "size": "1"}


def test_serve_without_pools_serves_and_keeps_the_stored_ones(tmp_path: Path, redis_port: int) -> None:
    client = redis.Redis(port=redis_port, decode_responses=True)
    client.sadd(keys.POOLS, "stored")
    client.hset(keys.pool("stored"), mapping=ORIGINAL_RECORD)
    config = write_config(
        tmp_path / "vmpooler.yaml",
        {
            ":redis:": {"server": "127.0.0.1", "port": redis_port},
            ":providers:": {":dummy:": {"ready_delay": 0.1}},
            ":config:": {"check_loop_delay_min": 0.2, "check_loop_delay_max": 1},
        },
    )
    process = VmpoolerProcess("serve", config, tmp_path).start()
    try:
        wait_until(lambda: client.scard("vmpooler__ready__stored") >= 2, 30, what="stored pool filled")
        status = httpx.get(f"{process.url}/api/v3/status", timeout=10).json()
        assert status["pools"]["stored"]["max"] == 2 and status["pools"]["stored"]["alias"] == ["keep", "kept"]
        checkout = httpx.post(f"{process.url}/api/v3/vm/kept", timeout=10).json()
        assert checkout["ok"] and checkout["kept"]["hostname"].endswith(".example.com")
    finally:
        assert process.stop() == 0
    assert "serving the pools published in Redis (vmpooler__pools): stored" in process.log_text()
    assert client.smembers(keys.POOLS) == {"stored"}
    assert client.hgetall(keys.pool("stored")) == ORIGINAL_RECORD  # never rewritten nor deleted

"""Fixtures for running the original vmpooler and ours side by side, each once per module."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.compat.original import OriginalVmpooler, require_original, write_shared_config
from tests.support.processes import VmpoolerProcess, wait_until
from tests.support.servers import RedisProcess, start_redis

#: the configuration both run: dummy VMs, dummy auth (any user whose password is not the user name),
#: an alias given as a list and one as a string, and a pool that can never fill (its clones all fail)
SHARED_CONFIG: dict[str, Any] = {
    "providers": {
        "dummy": {"skip_dns_check_before_creating_vm": True, "connection_pool_size": 50},
        "broken": {"provider_class": "dummy", "createvm_fail_percent": 100},
    },
    "dns_configs": {"example": {"dns_class": "dynamic-dns", "domain": "example.com"}},
    "auth": {"provider": "dummy"},
    "config": {
        "site_name": "compat",
        "task_limit": 20,
        "timeout": 15,
        "vm_checktime": 15,
        "ready_ttl": 1440,
        "check_loop_delay_min": 1,
        "check_loop_delay_max": 5,
        "vm_lifetime": 12,
        "vm_lifetime_auth": 24,
        "max_lifetime_upper_limit": 168,
        "experimental_features": True,
    },
    "pools": [
        {"name": "conf-a", "alias": ["conf"], "template": "Templates/conf-a", "size": 3, "provider": "dummy",
         "dns_plugin": "example"},
        {"name": "conf-b", "alias": "confb", "template": "Templates/conf-b", "size": 3, "provider": "dummy",
         "dns_plugin": "example"},
        {"name": "conf-empty", "template": "Templates/none", "size": 1, "provider": "broken",
         "dns_plugin": "example"},
    ],
}  # fmt: skip
FILLED = ("conf-a", "conf-b")


@dataclass
class Side:
    """One implementation under test: where it answers and the Redis it uses."""

    name: str
    url: str
    redis_port: int

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, decode_responses=True)


def wait_filled(side: Side, pools: tuple[str, ...] = FILLED, size: int = 3, timeout: float = 120) -> None:
    client = side.redis()
    wait_until(
        lambda: all(client.scard(f"vmpooler__ready__{pool}") >= size for pool in pools),
        timeout,
        pause=0.5,
        what=f"{side.name}: pools {', '.join(pools)} full",
    )


@contextlib.contextmanager
def running_original(home: Path, config: Path, redis_port: int, state_dir: Path) -> Iterator[OriginalVmpooler]:
    original = OriginalVmpooler(home, config, redis_port, state_dir).start(wait_full=False)
    try:
        yield original
    finally:
        original.stop()


@contextlib.contextmanager
def running_ours(config: Path, workdir: Path) -> Iterator[VmpoolerProcess]:
    ours = VmpoolerProcess("serve", config, workdir / "logs", workdir / "state").start()
    try:
        yield ours
    finally:
        ours.stop()


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    """The original and ours, each on its own Redis with the same configuration, pools filled."""
    home = require_original()
    work = tmp_path_factory.mktemp("side-by-side")
    servers: list[RedisProcess] = [start_redis(work / "redis-original"), start_redis(work / "redis-ours")]
    try:
        # a log file each (run.sh gives the original one through LOGFILE), so `config.logfile` compares too
        raw = {**SHARED_CONFIG, "config": {**SHARED_CONFIG["config"], "logfile": str(work / "ours.log")}}
        theirs_config = write_shared_config(work / "original.yaml", raw, servers[0].port)
        ours_config = write_shared_config(work / "ours.yaml", raw, servers[1].port)
        with (
            running_original(home, theirs_config, servers[0].port, work / "original") as original,
            running_ours(ours_config, work / "ours") as ours,
        ):
            sides = Side("original", original.url, servers[0].port), Side("ours", ours.url, servers[1].port)
            for side in sides:
                wait_filled(side)
            yield sides
    finally:
        for server in servers:
            server.stop()

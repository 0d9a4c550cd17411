"""Shared fixtures: one real redis-server for the session, flushed before each test that uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.servers import RedisProcess, make_store, start_redis
from vmpooler.config import Settings, parse_settings
from vmpooler.store.redis import Store


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_port(redis_server: RedisProcess) -> int:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    return redis_server.port


@pytest.fixture
async def store(redis_port: int) -> AsyncIterator[Store]:
    s = make_store(redis_port)
    yield s
    await s.close()


def build_settings(pools: list[dict[str, Any]], **sections: Any) -> Settings:
    raw: dict[str, Any] = {"pools": pools, **sections}
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture
def settings_factory() -> Callable[..., Settings]:
    return build_settings


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    return tmp_path / "dummy-inventory.json"

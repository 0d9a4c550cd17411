"""Shared fixtures: one real redis-server for the session, flushed before each test that uses it."""

from __future__ import annotations

import pkgutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import tests.support.fixtures as _fixture_plugins
from tests.support.servers import RedisProcess, make_store, start_redis
from vmpooler.config import Settings, parse_settings
from vmpooler.store.redis import Store

# every module in tests/support/fixtures/ is a plugin of session fixtures for a real external system
pytest_plugins = [
    "tests.support.test_kinds",
    *(f"{_fixture_plugins.__name__}.{m.name}" for m in pkgutil.iter_modules(_fixture_plugins.__path__)),
]


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

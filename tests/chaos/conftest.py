"""Fixtures of the chaos suite: a durable Redis per test module, and the run's FIGURES (see figures.py).

Each test records what it measured (``figures.record("kill9.leaked", 0)``) and asserts it; at the end of
the run the figures are printed as a table and written to ``.pytest_cache/chaos-figures.json`` under the
rootdir, for docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.chaos.durable_redis import start_durable_redis
from tests.chaos.figures import TABLE, Figures, report
from tests.support.servers import RedisProcess


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.config.stash.setdefault(TABLE, {}))


@pytest.fixture(scope="module")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = start_durable_redis(tmp_path_factory.mktemp("chaos-redis"))
    yield server
    server.stop()


@pytest.fixture
def chaos_redis_port(chaos_redis: RedisProcess) -> int:
    """The module's Redis, emptied for this test."""
    client = redis.Redis(port=chaos_redis.port)
    try:
        client.flushall()
    finally:
        client.close()
    return chaos_redis.port


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    table = config.stash.get(TABLE, {})
    if table:
        report(table, terminalreporter, config.rootpath / ".pytest_cache")

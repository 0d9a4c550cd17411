"""A redis-server that loses nothing it acknowledged, and that can be killed and started again from its AOF."""

from __future__ import annotations

from pathlib import Path

import redis

from tests.support.servers import RedisProcess, start_redis


def start_durable_redis(workdir: Path, port: int | None = None) -> RedisProcess:
    """redis-server with its AOF written before every reply (``appendfsync always``): a kill -9 loses
    nothing it acknowledged; started on ``port`` with the same ``workdir`` again, it replays the AOF."""
    server = start_redis(workdir, port=port, appendonly=True)
    client = redis.Redis(port=server.port)
    try:
        client.config_set("appendfsync", "always")
    finally:
        client.close()
    return server


def restart_durable_redis(server: RedisProcess) -> None:
    """Start ``server`` again (it was killed) on its port and data directory; it replays its AOF."""
    assert server.process.poll() is not None, "still running"
    server.process = start_durable_redis(server.workdir, server.port).process

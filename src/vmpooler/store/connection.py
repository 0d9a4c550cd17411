"""Opens the Redis client and turns redis-py's failures into our StoreError tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from vmpooler.errors import StoreError, StoreUnavailable

Redis = aioredis.Redis


def connect(
    host: str,
    port: int,
    *,
    db: int = 0,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    socket_timeout: float = 5.0,
    max_connections: int = 64,
    unix_socket: str | None = None,
) -> Redis:
    """A client that answers or fails within ``socket_timeout``: a dead Redis is an error, not a hang."""
    common: dict[str, Any] = {
        "db": db,
        # wait (up to the timeout) for a free connection rather than fail when all are busy
        "timeout": socket_timeout,
        "username": username,
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "decode_responses": True,
        "max_connections": max_connections,
        "health_check_interval": 30,
        # one quick retry rides over a dropped idle connection; more would turn an outage into a hang
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        "retry_on_error": [redis_errors.ConnectionError],
    }
    if unix_socket:
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=unix_socket, **common
        )
    else:
        connection_class = aioredis.SSLConnection if tls else aioredis.Connection
        pool = aioredis.BlockingConnectionPool(connection_class=connection_class, host=host, port=port, **common)
    return aioredis.Redis(connection_pool=pool)


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Re-raise redis-py errors as StoreUnavailable (cannot reach Redis) or StoreError (anything else)."""
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except redis_errors.BusyLoadingError as exc:
        raise StoreUnavailable("Redis is still loading its data set; retry shortly") from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc

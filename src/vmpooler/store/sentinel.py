"""A Redis client for the master a Sentinel group names, which follows the master through a failover.

Each new connection asks the sentinels where the master is. A connection to a dead master fails (and
its retry reconnects through the sentinels); one to a demoted master answers READONLY, which redis-py
turns into a reconnect. So after a failover the same client reaches the new master once Sentinel has
promoted it, without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

__all__ = ["SentinelClient", "master_client"]


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's wait for a free connection (as ``connect``)."""


class SentinelClient(aioredis.Redis):
    """The master's client; closing it closes the connections to the sentinels as well."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def master_client(
    sentinels: Sequence[tuple[str, int]],
    master_name: str,
    *,
    sentinel_options: dict[str, Any],
    options: dict[str, Any],
) -> aioredis.Redis:
    """A client of ``master_name``'s current master; ``options`` are the Redis connections' (as ``connect``
    builds them), ``sentinel_options`` those of the connections to the sentinels."""
    # redis-py leaves Sentinel.__init__ unannotated
    manager = Sentinel(list(sentinels), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: aioredis.Redis = manager.master_for(
        master_name,
        redis_class=SentinelClient,
        connection_pool_class=_BlockingSentinelPool,
        **options,
    )
    return client

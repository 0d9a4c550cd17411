"""Follows the event stream with XREAD BLOCK on a connection of its own (one per follower)."""

from __future__ import annotations

import contextlib
from typing import Any

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import Event

__all__ = ["EventFollower"]


class EventFollower:
    """A blocking read holds its connection for the whole wait, so it must not hold one of the shared
    pool's (the API's requests would queue behind it). The connection is made like the pool's (same
    server, credentials, TLS, Sentinel master) but never returned to it; ``close`` drops it."""

    def __init__(self, client: Redis) -> None:
        self._connection: Any = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]

    async def read(self, after: str, block_seconds: float, count: int = 500) -> list[Event]:
        """Events after stream id ``after``, waiting up to ``block_seconds`` for the first; [] when none came."""
        block_ms = max(1, int(block_seconds * 1000))
        # an explicit read timeout: the wait is not a late reply (the pool's gate leaves it alone), but a
        # Redis that dies mid-wait still fails it, one socket timeout after the block should have ended
        timeout = block_seconds + float(self._connection.socket_timeout or 5.0)
        async with translated():
            await self._connection.send_command(
                "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", keys.EVENT_STREAM, after
            )
            reply = await self._connection.read_response(timeout=timeout)
        if not reply:
            return []
        # RESP2: [[stream, [[id, [field, value, ...]], ...]]]; RESP3: {stream: [[id, [...]], ...]}
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return [Event.from_entry(str(entry_id), _pairs(fields)) for entry_id, fields in entries]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._connection.disconnect()


def _pairs(fields: Any) -> dict[str, str]:
    if isinstance(fields, dict):
        return {str(k): str(v) for k, v in fields.items()}
    flat = [str(item) for item in fields or []]
    return dict(zip(flat[::2], flat[1::2], strict=True))

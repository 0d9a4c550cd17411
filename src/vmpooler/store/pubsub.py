"""One Redis pub/sub channel read as an async iterator that ticks, so the reader can look at its stop flag."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from vmpooler.store.connection import Redis, translated


async def channel_messages(client: Redis, channel: str, poll_seconds: float) -> AsyncGenerator[str | None, None]:
    """Each message published on ``channel``; None after ``poll_seconds`` without one. Raises StoreError
    when the subscription breaks (the caller subscribes again, and meanwhile polls what it watches)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        async with translated():
            await pubsub.subscribe(channel)
        while True:
            async with translated():
                message = await pubsub.get_message(timeout=poll_seconds)
            yield None if message is None else str(message["data"])
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

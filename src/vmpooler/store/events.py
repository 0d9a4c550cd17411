"""Pool change events over Redis pub/sub: the API tells the managers a pool needs them now."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.pubsub import channel_messages

#: wake-ups for the manager's other loops, on the same channel: no pool can have these names
#: (a pool's name is letters, digits, ``_``, ``.`` and ``-``)
ONDEMAND = "@ondemand"
TASKS = "@tasks"


class EventStore:
    """Checkouts publish their pools from inside the checkout script; returns, overrides and
    on-demand requests call ``notify``; a new on-demand request publishes ``ONDEMAND`` and a queued VM
    task ``TASKS``, in the same round trip that records it. Pub/sub delivers at most once, so a manager still polls,
    only more slowly, in case it missed one."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    async def notify(self, pools: Sequence[str]) -> None:
        """Wake the managers of ``pools``: something there changed that they should act on soon."""
        if not pools:
            return
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.publish(keys.EVENTS, pool)
            await pipe.execute()

    def pool_events(self, poll_seconds: float = 1.0) -> AsyncGenerator[str | None, None]:
        """Names of pools as they are notified; None after ``poll_seconds`` without one, so the
        caller can look at its stop flag. Raises StoreError when the subscription breaks."""
        return channel_messages(self.client, keys.EVENTS, poll_seconds)

"""Queued VM operations (snapshot, revert, add disk): the API adds, the manager takes them one by one."""

from __future__ import annotations

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.events import TASKS
from vmpooler.store.scripts import load

#: task kind -> the set of "<vm>:<argument>" entries waiting, in the original's key layout
QUEUES = {
    "snapshot": keys.TASKS_SNAPSHOT,
    "revert": keys.TASKS_SNAPSHOT_REVERT,
    "disk": keys.TASKS_DISK,
}


def _in_progress(kind: str) -> str:
    return f"{QUEUES[kind]}__in_progress"


class TaskStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._take = load(client, "take_task")
        self._requeue = load(client, "requeue_tasks")

    async def add(self, kind: str, vm: str, argument: str) -> None:
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(QUEUES[kind], f"{vm}:{argument}")
            pipe.publish(keys.EVENTS, TASKS)  # the manager's task loop waits on this, polling slowly
            await pipe.execute()

    async def take(self, kind: str, now: float) -> tuple[str, str] | None:
        """One waiting task as (vm, argument), marked in progress until ``done``; None when idle."""
        async with translated():
            entry = await self._take(keys=[QUEUES[kind], _in_progress(kind)], args=[now])
        if not entry:
            return None
        vm, _, argument = str(entry).partition(":")
        return vm, argument

    async def done(self, kind: str, vm: str, argument: str) -> None:
        async with translated():
            await self.client.zrem(_in_progress(kind), f"{vm}:{argument}")

    async def requeue_stale(self, kind: str, older_than: float) -> int:
        async with translated():
            return int(await self._requeue(keys=[QUEUES[kind], _in_progress(kind)], args=[older_than]))

    async def waiting(self, kind: str) -> set[str]:
        async with translated():
            return {str(e) for e in await self.client.smembers(QUEUES[kind])}

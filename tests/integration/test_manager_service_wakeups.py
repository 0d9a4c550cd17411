"""The task and on-demand loops of an idle manager wait on the API's announcements instead of polling."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import redis

from tests.support.pools import dummy, settings_with
from tests.support.waiting import until
from vmpooler.api.services.ondemand import OndemandService
from vmpooler.api.services.vms import VMService
from vmpooler.manager.loop import Manager
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

POOLS = [{"name": "deb", "template": "t", "size": 1}, {"name": "cent", "template": "t", "size": 1}]


class Commands:
    """Every command clients send while it runs (Redis's MONITOR; a script's own commands left out)."""

    def __init__(self, port: int) -> None:
        self.sent: Counter[str] = Counter()
        self._client = redis.Redis(port=port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def __enter__(self) -> Commands:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._client.ping()  # the feed yields once more, so the thread sees the stop
        self._thread.join(10)
        self._client.close()

    def _listen(self) -> None:
        with self._client.monitor() as feed:
            for command in feed.listen():
                if self._stop.is_set():
                    return
                if command.get("client_type") != "lua":
                    self.sent[str(command["command"])] += 1

    def touching(self, *fragments: str) -> int:
        return sum(n for text, n in self.sent.items() if any(f in text for f in fragments))


async def test_idle_task_and_ondemand_loops_poll_slowly_and_wake_at_once(
    store: Store, inventory_file: Path, redis_port: int
) -> None:
    settings = settings_with(POOLS)
    manager = Manager(
        settings, store, {"dummy": dummy(inventory_file)}, call_timeout=10, ready_poll_interval=0.02,
        history_wait=lambda _now: 3600.0,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:

        async def full() -> bool:
            counts = await store.counts(["deb", "cent"])
            return all(c[VMState.READY] == 1 for c in counts.values()) and manager.wakeups.listening

        await until(full, "both pools full and the subscription up")
        await asyncio.sleep(1.5)  # the loops' first passes are over; both now wait (10 s) for an announcement
        with Commands(redis_port) as idle:
            await asyncio.sleep(3)
        # polling each second, the two loops sent 3 x (6 task + 6 on-demand) commands here
        assert idle.touching(keys.ONDEMAND_LOCK, keys.TASKS_SNAPSHOT, keys.TASKS_DISK) == 0, idle.sent

        started = time.monotonic()
        request_id = await OndemandService(settings, store).create({"deb": 1}, None)

        async def delivered() -> bool:
            return (await store.ondemand.get(request_id) or {}).get("status") == "ready"

        await until(delivered, "the on-demand request served", timeout=8)
        vm = (await store.checkout([["cent"]], time.time()))[0][1]  # type: ignore[index]
        snapshot = await VMService(settings, store).queue_snapshot(vm, None)

        async def snapshotted() -> bool:
            return f"snapshot:{snapshot}" in await store.vm(vm)

        await until(snapshotted, "the snapshot taken", timeout=8)
        # both well before the 10 s idle poll: the announcements woke the loops
        assert time.monotonic() - started < 6
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

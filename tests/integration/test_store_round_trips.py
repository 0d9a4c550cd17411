"""Writes that share a round trip (a VM's clone and boot statistics, a return and its announcement) all
happen, also when Redis has lost its scripts (pipelined as bare EVALSHA, they fall back)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.events import EventStore
from vmpooler.store.history import minute_of
from vmpooler.store.redis import Store


async def test_clone_and_boot_statistics_are_recorded_even_after_the_script_cache_was_flushed(store: Store) -> None:
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).date()
    for i, flush in enumerate((False, True)):
        name = f"vm{i}"
        assert await store.create_pending("deb", name, {})
        if flush:
            # as after a Redis restart: the pipelined EVALSHA is refused, the fallback loads the script
            await store.client.script_flush()
        await store.record_clone_time("deb", name, now, 2.5, {"clone_time": "2.50", "ip": f"10.0.0.{i}"})
        if flush:
            await store.client.script_flush()
        assert await store.mark_ready("deb", name, now, 4.0 + i, {"ip": f"10.0.1.{i}"})
        record = await store.vm(name)
        assert record["clone_time"] == "2.50" and record["ip"] == f"10.0.1.{i}" and record["ready"]

    clones = await store.stats.durations("clone", [today])
    boots = await store.stats.durations("boot", [today])
    assert (clones[0].count, boots[0].count) == (2, 2)
    assert (boots[0].minimum, boots[0].maximum) == (4.0, 5.0)
    assert await store.client.lrange(keys.history_boots("deb", minute_of(now)), 0, -1) == ["4.00", "5.00"]
    assert await store.client.hget(keys.history_counts("deb"), f"clones:{minute_of(now)}") == "2"
    assert await store.lastboot() == {"deb": (await store.vm("vm1"))["ready"]}


async def test_a_return_is_announced_to_the_pools_manager_in_the_same_round_trip(store: Store) -> None:
    heard: list[str | None] = []
    events = EventStore(store.client).pool_events(poll_seconds=0.2)
    assert await anext(events) is None  # subscribed
    for i, flush in enumerate((False, True)):
        assert await store.create_pending("deb", f"vm{i}", {})
        assert await store.mark_ready("deb", f"vm{i}", time.time(), 1.0)
        assert await store.checkout([["deb"]], time.time())
        if flush:
            await store.client.script_flush()
        assert await store.move("deb", f"vm{i}", VMState.RUNNING, VMState.COMPLETED, notify=True)
        assert not await store.move("deb", f"vm{i}", VMState.RUNNING, VMState.COMPLETED, notify=True)
        heard += [await anext(events) for _ in range(2)]
    await events.aclose()
    assert heard == ["deb"] * 4
    assert await store.client.smembers(keys.state_set(VMState.COMPLETED, "deb")) == {"vm0", "vm1"}

"""The manager's deadline index: kept in step by the state scripts, read only as far as due, and built
from the records for VMs written without it (before it existed, or by the original vmpooler)."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from tests.support.pools import dummy, manager_for, run_until, settings_with, settle
from vmpooler.domain import PoolTarget
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.records import format_time
from vmpooler.store.redis import Store

POOL = {"name": "deb", "template": "templates/deb", "size": 3}


async def command_calls(store: Store) -> dict[str, int]:
    stats = await store.client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


async def test_the_ready_queue_loses_a_name_that_leaves_ready_another_way(store: Store) -> None:
    # 50 recycles (ready TTL, excess, a failed check, a drain all move ready -> completed/failed)
    for i in range(50):
        assert await store.create_pending("p", f"vm{i}", {})
        assert await store.mark_ready("p", f"vm{i}", 1000.0 + i, 1.0)
        target = VMState.COMPLETED if i % 2 else VMState.FAILED
        assert await store.move("p", f"vm{i}", VMState.READY, target)
    assert await store.client.llen(keys.ready_queue("p")) == 0
    assert await store.client.zcard(keys.ready_since("p")) == 0
    assert await store.client.zcard(keys.checked_at("p")) == 0


async def test_the_index_follows_each_move(store: Store) -> None:
    assert await store.create_pending("p", "vm1", {})
    assert await store.mark_ready("p", "vm1", 1000.0, 1.0)
    assert await store.client.zscore(keys.ready_since("p"), "vm1") == 1000.0
    assert await store.client.zscore(keys.checked_at("p"), "vm1") == 1000.0
    assert await store.checkout([["p"]], 2000.0, lifetime_hours=2) == [("p", "vm1")]
    assert await store.client.zscore(keys.lifetime_ends("p"), "vm1") == 2000.0 + 2 * 3600
    assert not await store.client.zcard(keys.ready_since("p"))
    await store.deadlines.set_lifetime("p", "vm1", 5, 2000.0 + 5 * 3600)
    assert await store.client.zscore(keys.lifetime_ends("p"), "vm1") == 2000.0 + 5 * 3600
    assert await store.move("p", "vm1", VMState.RUNNING, VMState.COMPLETED)
    assert not await store.client.zcard(keys.lifetime_ends("p"))
    # no lifetime: indexed as never ending, so the index stays as large as the running set
    await make_ready(store, "vm2")
    assert await store.checkout([["p"]], 2000.0, lifetime_hours=0) == [("p", "vm2")]
    assert await store.client.zscore(keys.lifetime_ends("p"), "vm2") == float("inf")


async def make_ready(store: Store, name: str, pool: str = "p") -> None:
    assert await store.create_pending(pool, name, {})
    assert await store.mark_ready(pool, name, time.time(), 1.0)


async def test_a_steady_pass_reads_no_vm_record(store: Store, inventory_file: Path) -> None:
    manager = manager_for(settings_with([{**POOL, "size": 30}]), store, dummy(inventory_file))
    await manager.register_pools()

    async def full() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 30

    await run_until(manager, full)
    await settle(manager)
    await manager.run_once()
    before = await command_calls(store)
    assert await manager.run_once() == {"deb": False}
    after = await command_calls(store)
    reads = {c: after.get(c, 0) - before.get(c, 0) for c in ("hgetall", "hmget", "hget", "smembers")}
    # the view: one set per live state and 4 pool hashes; no record of the 30 ready VMs
    assert reads["hgetall"] == 0 and reads["hmget"] == 0, reads
    assert reads["hget"] <= 6 and reads["smembers"] <= len(LIVE_STATES), reads


async def test_vms_written_without_the_index_are_judged_by_their_records(
    store: Store, inventory_file: Path, redis_port: int
) -> None:
    """As the original vmpooler writes them: set membership and a record with Ruby times, no index."""
    provider = dummy(inventory_file)
    settings = settings_with([{**POOL, "size": 0}], vm_lifetime=2, ready_ttl=60)  # ready for an hour, lent for two
    manager = manager_for(settings, store, provider)
    await manager.register_pools()
    client = redis.Redis(port=redis_port, decode_responses=True)
    target = PoolTarget("deb", "templates/deb", {})
    long_ago = format_time(time.time() - 3 * 3600)

    async def legacy(name: str, state: VMState, **fields: str) -> None:
        await provider.create_vm(target, name)
        client.sadd(keys.state_set(state, "deb"), name)
        client.hset(keys.vm(name), mapping={"template": "deb", **fields})

    await legacy("old-ready", VMState.READY, ready=long_ago)
    await legacy("old-running", VMState.RUNNING, checkout=long_ago)
    await legacy("young-running", VMState.RUNNING, checkout=format_time(time.time()))
    await manager.run_once()  # the first pass builds the index
    for name in ("old-ready", "old-running"):
        assert await store.locate(name) in (("deb", VMState.COMPLETED), ("deb", VMState.DESTROYED))
    assert await store.members("deb", VMState.RUNNING) == {"young-running"}
    # one written behind the running manager's back is found too: the index no longer matches the set
    await legacy("late-running", VMState.RUNNING, checkout=long_ago, lifetime="1")
    await manager.run_once()
    assert await store.locate("late-running") in (("deb", VMState.COMPLETED), ("deb", VMState.DESTROYED))
    assert await store.members("deb", VMState.RUNNING) == {"young-running"}
    await settle(manager)

"""The Redis store against a real redis-server: atomic moves, O(1) FIFO checkout, leak discovery."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from vmpooler.errors import IllegalTransition, StoreUnavailable
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import connect
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store


async def make_ready(store: Store, pool: str, *names: str, now: float = 1000.0) -> None:
    for i, name in enumerate(names):
        assert await store.create_pending(pool, name, {"clone": "x"})
        assert await store.mark_ready(pool, name, now + i, 1.5)


async def test_create_pending_refuses_a_known_name(store: Store) -> None:
    assert await store.create_pending("p", "vm1", {"clone": "t"})
    assert not await store.create_pending("p", "vm1", {"clone": "t"})
    assert await store.members("p", VMState.PENDING) == {"vm1"}
    record = await store.vm("vm1")
    assert record["pool"] == "p" and record["template"] == "p" and record["clone"] == "t"


async def test_move_is_atomic_and_refuses_illegal_transitions(store: Store) -> None:
    await store.create_pending("p", "vm1", {})
    with pytest.raises(IllegalTransition):
        await store.move("p", "vm1", VMState.PENDING, VMState.COMPLETED)
    assert await store.move("p", "vm1", VMState.PENDING, VMState.FAILED, {"clone_error": "boom"})
    # a second mover loses: the VM is no longer pending
    assert not await store.move("p", "vm1", VMState.PENDING, VMState.FAILED)
    members = await store.all_members("p")
    assert members[VMState.FAILED] == {"vm1"} and not members[VMState.PENDING]
    assert (await store.vm("vm1"))["clone_error"] == "boom"


async def test_checkout_hands_out_the_oldest_ready_vm_first(store: Store) -> None:
    await make_ready(store, "p", "first", "second", "third")
    taken = await store.checkout([["p"]], now=2000.0)
    assert taken == [("p", "first")]
    taken = await store.checkout([["p"], ["p"]], now=2000.0)
    assert taken == [("p", "second"), ("p", "third")]
    assert await store.members("p", VMState.RUNNING) == {"first", "second", "third"}
    assert (await store.vm("first"))["checkout"]


async def test_checkout_is_all_or_nothing(store: Store) -> None:
    await make_ready(store, "a", "a1")
    await make_ready(store, "b", "b1")
    assert await store.checkout([["a"], ["b"], ["b"]], now=1.0) == 2
    assert await store.members("a", VMState.READY) == {"a1"}
    assert await store.members("b", VMState.READY) == {"b1"}
    assert not await store.members("a", VMState.RUNNING)
    # and the queue order survived the refusal
    assert await store.checkout([["a"], ["b"]], now=1.0) == [("a", "a1"), ("b", "b1")]


async def test_checkout_falls_back_to_the_next_candidate_pool(store: Store) -> None:
    await make_ready(store, "b", "b1")
    assert await store.checkout([["a", "b"]], now=1.0) == [("b", "b1")]


async def test_checkout_skips_queue_entries_that_left_ready(store: Store) -> None:
    await make_ready(store, "p", "gone", "kept")
    assert await store.move("p", "gone", VMState.READY, VMState.COMPLETED)
    assert await store.checkout([["p"]], now=1.0) == [("p", "kept")]


async def test_checkout_finds_ready_vms_written_by_the_original(store: Store, redis_port: int) -> None:
    # the Ruby vmpooler only SADDs to the ready set; there is no queue entry
    client = redis.Redis(port=redis_port, decode_responses=True)
    client.sadd(keys.state_set(VMState.READY, "p"), "legacy")
    client.hset(keys.vm("legacy"), mapping={"pool": "p", "template": "p"})
    assert await store.checkout([["p"]], now=1.0) == [("p", "legacy")]
    assert client.sismember(keys.state_set(VMState.RUNNING, "p"), "legacy")
    assert await store.locate("legacy") == ("p", VMState.RUNNING)


async def test_concurrent_checkouts_never_hand_out_a_vm_twice(store: Store) -> None:
    names = [f"vm{i:03d}" for i in range(60)]
    await make_ready(store, "p", *names)
    results = await asyncio.gather(*(store.checkout([["p"], ["p"]], now=1.0) for _ in range(40)))
    handed = [name for r in results if isinstance(r, list) for _, name in r]
    refused = [r for r in results if isinstance(r, int)]
    assert len(handed) == len(set(handed)) == 60
    assert len(refused) == 10


async def test_discover_marks_only_names_in_no_state(store: Store) -> None:
    await make_ready(store, "p", "known")
    found = await store.discover("p", ["known", "stray"])
    assert found == ["stray"]
    assert await store.members("p", VMState.DISCOVERED) == {"stray"}


async def test_destroyed_vm_keeps_its_record_for_data_ttl(store: Store, redis_port: int) -> None:
    await make_ready(store, "p", "vm1")
    await store.move("p", "vm1", VMState.READY, VMState.COMPLETED)
    assert await store.mark_destroyed("p", "vm1", VMState.COMPLETED, 5000.0)
    assert await store.locate("vm1") == ("p", VMState.DESTROYED)
    ttl = redis.Redis(port=redis_port).ttl(keys.vm("vm1"))
    assert 0 < ttl <= store.data_ttl_seconds


async def test_clone_slots_bound_concurrency_and_expire(store: Store) -> None:
    assert await store.slots.acquire("a", now=100, lease_seconds=10, limit=2)
    assert await store.slots.acquire("b", now=100, lease_seconds=10, limit=2)
    assert not await store.slots.acquire("c", now=105, lease_seconds=10, limit=2)
    await store.slots.release("a")
    assert await store.slots.acquire("c", now=105, lease_seconds=10, limit=2)
    # a crashed holder's lease runs out
    assert await store.slots.acquire("d", now=111, lease_seconds=10, limit=2)


async def test_a_dead_managers_clone_slots_are_reaped_a_live_ones_kept(store: Store) -> None:
    now = time.time()
    await store.heartbeat("alive", "host:1", 20, now)
    mine = store.slots.member("p", "vm1", "alive")
    theirs = store.slots.member("p", "vm2", "dead")  # killed before recording its VM: no heartbeat left
    for member in (mine, theirs):
        assert await store.slots.acquire(member, now=now, lease_seconds=900, limit=5)

    assert await store.slots.reap() == 1
    assert await store.slots.in_flight(now) == 1
    assert await store.slots.reap() == 0
    assert not await store.slots.acquire("x", now=now, lease_seconds=900, limit=1)  # mine still counts


async def test_unreachable_redis_raises_store_unavailable_quickly() -> None:
    dead = Store(connect("127.0.0.1", free_port(), socket_timeout=0.5))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnavailable):
        await dead.counts(["p"])
    assert loop.time() - started < 5
    await dead.close()


async def test_counts_sizes_every_live_state_of_every_pool_named(store: Store) -> None:
    await make_ready(store, "a", "a1", "a2")
    await store.create_pending("b", "b1", {})
    counts = await store.counts(["a", "b", "none"])
    assert counts["a"][VMState.READY] == 2 and counts["a"][VMState.PENDING] == 0
    assert counts["b"][VMState.PENDING] == 1 and counts["b"][VMState.READY] == 0
    assert set(counts["none"].values()) == {0}

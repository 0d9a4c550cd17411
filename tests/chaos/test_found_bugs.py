"""The bugs the chaos suite found, each reduced to its smallest reproduction and kept as a regression test.

1. A manager killed mid-clone left its clone slots taken until their lease ran out (the pool's clone
   timeout plus the call timeout: 17 minutes by default); ``task_limit`` such slots stopped every pool
   cloning that long. Its successor now frees the slot of each clone it finds orphaned.
2. A manager whose pool lease lapsed (Redis frozen, or the manager stalled, past the lease) took the
   lease again under a new fence but kept writing with the old one: every clone was refused with
   LeaseLost and the pool was never refilled. The keeper now adopts the new fence.
3. A Redis call against a stalled Redis took up to 4x the socket timeout (the command and the
   reconnect's handshake were each retried on timeout), and a retried command could run twice when
   Redis woke. Timeouts are no longer retried; a dropped connection still is.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from tests.chaos import scenario
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from tests.support.servers import RedisProcess, make_store
from vmpooler.errors import StoreUnavailable
from vmpooler.manager.leases import LeaseKeeper
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import connect, translated

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
def test_a_killed_managers_clone_slots_are_freed_by_its_successor(chaos_redis_port: int, tmp_path: Path) -> None:
    raw = scenario.config(
        chaos_redis_port, tmp_path / "inventory.json", {"p": 2}, dummy={"createvm_max_time": 5}, task_limit=2
    )
    manager = VmpoolerProcess("manager", write_config(tmp_path / "vmpooler.yaml", raw), tmp_path / "logs")
    client = redis.Redis(port=chaos_redis_port, decode_responses=True)
    try:
        manager.start()
        wait_until(lambda: client.zcard(keys.CLONE_SLOTS) == 2, 30, what="both clone slots taken")
        taken = set(client.zrange(keys.CLONE_SLOTS, 0, -1))
        manager.kill()
        manager.start()
        # the slots' leases run for minutes: only their release lets the successor clone at all
        wait_until(
            lambda: client.scard(keys.state_set(VMState.READY, "p")) == 2, 30, what="the pool refilled by the successor"
        )
        assert taken.isdisjoint(client.zrange(keys.CLONE_SLOTS, 0, -1))
    finally:
        manager.stop()
        client.close()


async def test_a_lapsed_lease_is_retaken_with_its_new_fence(chaos_redis_port: int) -> None:
    store = make_store(chaos_redis_port)
    fences: dict[str, str] = {}
    keeper = LeaseKeeper(store, "m1", ["p"], 3, 20, fences.__setitem__)
    try:
        await store.heartbeat("m1", "test", 20)
        await keeper.renew_once()
        first = fences["p"]
        await store.client.delete(keys.lease("p"))  # the lease lapses, as after a long Redis freeze
        await keeper.renew_once()
        assert fences["p"] != first
        assert await store.create_pending("p", "vm1", {"clone": "x"}, fences["p"])
    finally:
        await store.close()


async def test_a_stalled_redis_costs_one_socket_timeout_per_call(
    chaos_redis: RedisProcess, chaos_redis_port: int
) -> None:
    client = connect("127.0.0.1", chaos_redis_port, socket_timeout=1.0)
    await client.set("counter", 0)
    os.kill(chaos_redis.process.pid, signal.SIGSTOP)
    waits = []
    try:
        for _ in range(2):  # on a connection that was open, then on one that must be opened anew
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                async with translated():
                    await client.incr("counter")
            waits.append(time.monotonic() - started)
    finally:
        os.kill(chaos_redis.process.pid, signal.SIGCONT)
    try:
        assert max(waits) < 1.5, waits
        # the INCR sent before the freeze runs when Redis wakes, once: it was not sent a second time
        wait_until(lambda: redis.Redis(port=chaos_redis_port).get("counter") == b"1", 5, what="the INCR ran")
    finally:
        await client.aclose()

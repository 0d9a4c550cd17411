"""The event stream: every lifecycle change writes its event in the same step, a refused one writes none;
bounded by length and age; ``vm.expiring`` once per deadline."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from tests.support.pools import dummy, manager_for, run_until, settings_with, settle
from vmpooler.manager.event_keeper import EventKeeper
from vmpooler.states import ALLOWED, VMState
from vmpooler.store import keys
from vmpooler.store.connection import connect
from vmpooler.store.eventlog import EVENT_TYPES, Event, transition_event
from vmpooler.store.redis import Store


async def events(store: Store) -> list[Event]:
    return await store.eventlog.after("0", count=10_000)


def test_every_allowed_transition_has_a_known_event_type() -> None:
    for source, targets in ALLOWED.items():
        for target in targets:
            assert transition_event(source, target) in EVENT_TYPES


async def test_a_vms_whole_life_is_in_the_stream(store: Store, inventory_file: Path) -> None:
    manager = manager_for(
        settings_with([{"name": "deb", "template": "t/deb", "size": 2}]), store, dummy(inventory_file)
    )
    await manager.register_pools()

    async def full() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2

    await run_until(manager, full)
    await settle(manager)
    taken = await store.checkout([["deb"]], 1000.0, {"token:user": "alice"})
    assert isinstance(taken, list)
    (_, name) = taken[0]
    assert await store.move("deb", name, VMState.RUNNING, VMState.COMPLETED, reason="returned")
    before = await store.client.xlen(keys.EVENT_STREAM)
    # refused: it is not running any more, so nothing changes and no event is written
    assert not await store.move("deb", name, VMState.RUNNING, VMState.COMPLETED)
    assert await store.checkout([["deb"]] * 5, 1000.0) == 1  # one ready VM: the second request is short
    assert await store.client.xlen(keys.EVENT_STREAM) == before
    await manager.run_once()
    await settle(manager)
    life = [(e.type, e.owner) for e in await events(store) if e.vm == name]
    assert life == [
        ("vm.cloned", ""),
        ("vm.ready", ""),
        ("vm.checked_out", "alice"),
        ("vm.returned", "alice"),
        ("vm.destroyed", "alice"),
    ]
    returned = next(e for e in await events(store) if e.vm == name and e.type == "vm.returned")
    assert returned.pool == "deb" and returned.data == {"from": "running", "reason": "returned"}
    assert returned.at > 1_000_000_000


async def test_pool_token_and_config_events_only_for_changes(store: Store) -> None:
    await store.health.degrade("deb", "clone failed 5 times", 1000.0, 1030.0)
    await store.health.degrade("deb", "clone failed 6 times", 1001.0, 1060.0)  # still open: no new event
    await store.health.recover("deb")
    await store.health.recover("deb")  # healthy already
    await store.tokens.create("tid1", {"user": "bob", "hint": "ab12"})
    assert await store.tokens.revoke("tid1", "bob")
    assert not await store.tokens.revoke("tid1", "bob")
    await store.overrides.set("size", {"deb": "4"})
    assert await store.overrides.clear("size", "deb") == "4"
    assert await store.overrides.clear("size", "deb") is None
    seen = [(e.type, e.pool, e.owner, e.data) for e in await events(store)]
    assert seen == [
        ("pool.breaker_opened", "deb", "", {"problem": "clone failed 5 times", "since": 1000.0, "retry_at": 1030.0}),
        ("pool.breaker_closed", "deb", "", {}),
        ("token.created", "", "bob", {"hint": "ab12"}),
        ("token.revoked", "", "bob", {"hint": "ab12", "reason": "revoked"}),
        ("config.changed", "deb", "", {"kind": "size", "value": "4"}),
        ("config.changed", "deb", "", {"kind": "size", "before": "4", "value": None}),
    ]


async def test_expiring_once_per_deadline_and_again_after_an_extension(store: Store) -> None:
    settings = settings_with([{"name": "deb", "template": "t/deb", "size": 0}], events_expiring_minutes=10)
    now = [10_000.0]
    keeper = EventKeeper(settings, store, lambda: ["deb"], clock=lambda: now[0])
    for name in ("soon", "later"):
        assert await store.create_pending("deb", name, {})
        assert await store.mark_ready("deb", name, 9000.0, 1.0)
    await store.checkout([["deb"]], 9000.0, {"token:user": "carol"}, lifetime_hours=1)  # ends 12600
    await store.checkout([["deb"]], 9000.0, lifetime_hours=3)  # ends 19800
    assert await keeper.run_once() == []
    now[0] = 12_600.0 - 300
    (warned,) = await keeper.run_once()
    assert await keeper.run_once() == []  # once
    await store.deadlines.set_lifetime("deb", warned, 2, 9000.0 + 2 * 3600)
    now[0] = 9000.0 + 2 * 3600 - 60
    assert await keeper.run_once() == [warned]  # a new deadline is warned of again
    expiring = [e for e in await events(store) if e.type == "vm.expiring"]
    assert [(e.vm, e.data["ends_at"]) for e in expiring] == [(warned, 12600), (warned, 16200)]
    assert {e.owner for e in expiring} == {"carol"}


async def reads_once_quiet(store: Store) -> int:
    """Redis's socket reads so far, once nothing but this INFO reads (the count moves by one a call)."""
    last = int((await store.client.info("stats"))["total_reads_processed"])
    for _ in range(100):
        await asyncio.sleep(0.02)
        now = int((await store.client.info("stats"))["total_reads_processed"])
        if now - last == 1:
            return now
        last = now
    raise AssertionError("something kept talking to Redis for 2 s")


async def test_the_expiring_sweep_reads_every_pools_deadlines_in_one_round_trip(store: Store) -> None:
    pools = [f"p{i:02d}" for i in range(30)]
    settings = settings_with([{"name": p, "template": "t", "size": 0} for p in pools], events_expiring_minutes=10)
    keeper = EventKeeper(settings, store, lambda: pools, clock=lambda: 12_600.0 - 300)
    assert await keeper.run_once() == []  # the first round also trims the streams: not the one measured
    # an earlier warning (vm3's lifetime ends at 8600, long before the measured sweep looks) loads the
    # script into this fresh Redis (NOSCRIPT, then SCRIPT LOAD): that is once per Redis, not per sweep
    for pool, vm, at in (("p03", "vm3", 5000.0), ("p07", "vm7", 9000.0)):
        assert await store.create_pending(pool, vm, {})
        assert await store.mark_ready(pool, vm, at, 1.0)
        await store.checkout([[pool]], at, lifetime_hours=1)
    earlier = EventKeeper(settings, store, lambda: pools, clock=lambda: 8600.0 - 300)
    assert await earlier.run_once() == ["vm3"]
    # vm7's lifetime ends at 12600: due for a warning in the measured sweep
    before = await reads_once_quiet(store)  # the checkout's own follow-up writes are not the sweep's
    assert await keeper.run_once() == ["vm7"]
    # one round trip per pool was 31 here; now the pipeline of reads and the one pool's script call
    assert int((await store.client.info("stats"))["total_reads_processed"]) - before <= 3


async def test_the_stream_is_bounded_by_length_and_age(redis_port: int) -> None:
    store = Store(connect("127.0.0.1", redis_port, socket_timeout=2.0), events_max_length=100)
    try:
        for i in range(30):
            await store.overrides.set("size", {f"p{j}": str(i) for j in range(20)})
        # MAXLEN ~ trims whole nodes (100 entries each by default): about, never far above
        assert 100 <= await store.client.xlen(keys.EVENT_STREAM) <= 200
        await store.eventlog.trim(max_age_seconds=3600, now=1e10)  # everything is older than that
        assert await store.client.xlen(keys.EVENT_STREAM) < 100
        counts = Counter(e.type for e in await events(store))
        assert set(counts) <= {"config.changed"}
    finally:
        await store.close()

"""Hand-out checks: a VM that fails is quarantined and replaced within the checkout, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from typer.testing import CliRunner

from tests.support.clock import Clock
from tests.support.pools import dummy, manager_for, run_until, settings_with, settle
from tests.support.servers import ApiThread
from vmpooler.api.services.status import StatusService
from vmpooler.api.services.vms import VMService
from vmpooler.cli.main import app as cli
from vmpooler.config.handout import HandoutCheck
from vmpooler.domain import PoolTarget
from vmpooler.errors import ServiceUnavailable
from vmpooler.health.probe import probe
from vmpooler.manager.breaker import BreakerState
from vmpooler.providers.dummy_listeners import Health, Listeners
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.redis import Store

SSH = {"ssh": 22, "budget_ms": 250}


def handout_settings(size: int, check: dict[str, Any] = SSH, **pool: Any) -> Any:
    return settings_with([{"name": "deb", "template": "t/deb", "size": size, "handout_check": check, **pool}])


async def ready(store: Store) -> set[str]:
    return await store.members("deb", VMState.READY)


async def queue(store: Store) -> list[str]:
    """The pool's ready VMs in the order checkouts take them."""
    return [str(name) for name in await store.client.lrange(keys.ready_queue("deb"), 0, -1)]


def hostnames(body: dict[str, Any]) -> set[str]:
    value = body["deb"]["hostname"]
    return set(value if isinstance(value, list) else [value])


async def test_each_kind_of_check_tells_a_live_service_from_a_mute_or_dead_one() -> None:
    listeners = Listeners()
    try:
        live = f"127.0.0.1:{await listeners.open('live', Health.HEALTHY)}"
        mute = f"127.0.0.1:{await listeners.open('mute', Health.MUTE)}"
        dead = f"127.0.0.1:{await listeners.open('dead', Health.HEALTHY)}"
        listeners.close("dead")
        checks = {
            kind: HandoutCheck.model_validate({kind: value, "budget_ms": 200})
            for kind, value in (("tcp", 22), ("ssh", 22), ("http", "/health"))
        }
        for kind, check in checks.items():
            assert await probe(check, live, "live") is None, kind
            assert await probe(check, dead, "dead") is not None, kind
        # a port that accepts but whose service hangs: only a check that waits for the service sees it
        assert await probe(checks["tcp"], mute, "mute") is None
        started = time.perf_counter()
        assert await probe(checks["ssh"], mute, "mute") == "no answer within 200 ms"
        assert time.perf_counter() - started < 0.5  # the budget holds
        assert await probe(checks["http"], mute, "mute") == "no answer within 200 ms"
    finally:
        listeners.close_all()


async def test_failing_vms_are_quarantined_and_replaced_and_a_short_batch_gives_the_good_ones_back(
    store: Store, redis_port: int
) -> None:
    settings = handout_settings(4)
    provider = dummy(None, listen=True)
    manager = manager_for(settings, store, provider)

    async def full() -> bool:
        await settle(manager)
        return len(await ready(store)) == 4

    await run_until(manager, full)
    first = await queue(store)  # the checkout takes the oldest first: the two at the head die
    dead = first[:2]
    for name in dead:
        provider._listeners.close(name)  # the VM died while it sat ready; Redis still says ready
    with ApiThread(settings, redis_port) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            reply = await client.post("/api/v3/vm", json={"deb": 2})
            assert reply.status_code == 200, reply.text
            assert hostnames(reply.json()) == set(first[2:])
            assert await store.members("deb", VMState.QUARANTINE) == set(dead)
            record = await store.vm(dead[0])
            assert "hand-out check ssh 22 failed" in record["quarantine_reason"]
            assert "checkout" not in record and "quarantined" in record
            events = [e for e in await store.eventlog.after("0") if e.type == "vm.quarantined"]
            assert {e.vm for e in events} == set(dead)  # written in the same step as the move
            assert all("ssh 22 failed" in e.data["reason"] and e.pool == "deb" for e in events)

            await run_until(manager, full)  # refilled: four new ready VMs, of which three die
            second = await queue(store)
            for name in second[:3]:
                provider._listeners.close(name)
            reply = await client.post("/api/v3/vm", json={"deb": 2})
            assert reply.status_code == 503 and reply.json()["ok"] is False, reply.text
            # nothing handed out, nothing lost: the one VM that passed is ready again, and first in line
            assert await ready(store) == {second[3]}
            assert await store.members("deb", VMState.QUARANTINE) == set(dead) | set(second[:3])
            assert len(await store.members("deb", VMState.RUNNING)) == 2
            assert (await queue(store))[0] == second[3]
            reply = await client.post("/api/v3/vm", json={"deb": 1})
            assert hostnames(reply.json()) == {second[3]}
    await provider.close()


async def test_quarantine_is_destroyed_after_its_hours_and_a_high_failure_rate_opens_the_breaker(
    store: Store,
) -> None:
    check = {**SSH, "min_checks": 4, "max_failure_rate": 0.5}
    settings = handout_settings(1, check, quarantine_hours=2)
    provider = dummy(None, listen=True)
    clock = Clock()
    manager = manager_for(settings, store, provider, clock)

    async def one_ready() -> bool:
        await settle(manager)
        return len(await ready(store)) == 1

    await run_until(manager, one_ready)
    (name,) = await ready(store)
    assert await store.checkout([["deb"]], clock()) == [("deb", name)]
    assert await store.handout.undo("deb", name, VMState.QUARANTINE, clock(), reason="test")
    await store.handout.record({"deb": (4, 3)}, [], clock())  # 3 of 4 checks failed

    await manager.run_once()
    breaker = manager.reconcilers["deb"].ctx.breaker
    assert breaker.state is BreakerState.OPEN
    status = await StatusService(settings, store).status()
    assert "3 of 4 VMs failed their hand-out check" in status["pools"]["deb"]["degraded"]["problem"]
    assert await store.members("deb", VMState.QUARANTINE) == {name}  # kept for debugging...

    clock.advance(2 * 3600 + 1)  # ... for quarantine_hours, then destroyed
    await manager.run_once()
    await settle(manager)
    assert name not in await store.members("deb", VMState.QUARANTINE)
    assert name not in provider.all_vms().get("deb", [])
    await provider.close()


async def test_the_quarantine_commands_list_release_and_destroy(store: Store, redis_port: int, tmp_path: Path) -> None:
    config = tmp_path / "vmpooler.yaml"
    pools = [{"name": "deb", "template": "t/deb", "size": 0, "handout_check": {"tcp": 22, "budget_ms": 200}}]
    config.write_text(yaml.safe_dump({"redis": {"server": "127.0.0.1", "port": redis_port}, "pools": pools}))
    listeners = Listeners()
    port = await listeners.open("alive", Health.HEALTHY)
    for name, ip in (("alive", f"127.0.0.1:{port}"), ("gone", "127.0.0.1:1")):
        assert await store.create_pending("deb", name, {"clone": "x", "ip": ip})
        assert await store.mark_ready("deb", name, time.time(), 1.0)
        assert await store.checkout([["deb"]], time.time()) == [("deb", name)]
        assert await store.handout.undo("deb", name, VMState.QUARANTINE, time.time(), reason=f"{name} test")

    def run(*args: str) -> Any:
        # the commands run their own event loop: in a thread, while this one serves the listener
        return CliRunner().invoke(cli, ["quarantine", *args, "--config", str(config)])

    listed = await asyncio.to_thread(run, "list", "--json")
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.output)
    assert {vm["name"] for vm in found["quarantined"]} == {"alive", "gone"}
    assert found["quarantined_total"] == {"deb": 2}

    released = await asyncio.to_thread(run, "release", "alive", "gone")
    assert released.exit_code == 1  # gone still fails its check and stays
    assert await store.members("deb", VMState.READY) == {"alive"}
    assert await store.members("deb", VMState.QUARANTINE) == {"gone"}

    destroyed = await asyncio.to_thread(run, "destroy", "--all")
    assert destroyed.exit_code == 0, destroyed.output
    assert await store.members("deb", VMState.COMPLETED) == {"gone"}
    listeners.close_all()


async def test_the_dummy_faults_kill_a_vm_once_ready_or_leave_its_port_without_a_service() -> None:
    check = HandoutCheck(ssh=22, budget_ms=200)
    pool = PoolTarget("deb", "t/deb")
    for fault, verdict in (
        ("ready_die_percent", "ConnectionRefusedError"),
        ("port_without_service_percent", "no answer"),
    ):
        provider = dummy(None, listen=True, ready_delay=0, **{fault: 100})
        info = await provider.create_vm(pool, "vm1")
        assert info.ip is not None and info.ip.startswith("127.0.0.1:")
        if fault == "ready_die_percent":
            assert await probe(check, info.ip, "vm1") is None  # alive until it is found ready...
        assert await provider.vm_ready(pool, "vm1")  # ... which the provider still says it is
        failed = await probe(check, info.ip, "vm1")
        assert failed is not None and verdict in failed, failed
        await provider.close()


async def test_concurrent_checkouts_with_dead_vms_never_share_lose_or_hand_out_a_dead_one(store: Store) -> None:
    settings = handout_settings(0)
    listeners = Listeners()
    alive = set()
    for i in range(30):
        name = f"vm{i}"
        port = await listeners.open(name, Health.HEALTHY)
        if i % 3 == 0:
            listeners.close(name)  # a third are dead
        else:
            alive.add(name)
        assert await store.create_pending("deb", name, {"clone": "x", "ip": f"127.0.0.1:{port}"})
        assert await store.mark_ready("deb", name, time.time(), 1.0)
    service = VMService(settings, store)

    async def one() -> list[str]:
        try:
            return [vm.hostname for vm in await service.checkout({"deb": 2})]
        except ServiceUnavailable:
            return []

    handed = [name for batch in await asyncio.gather(*(one() for _ in range(15))) for name in batch]
    assert len(handed) == len(set(handed)), "a VM was handed out twice"
    assert set(handed) <= alive
    assert len(handed) >= 10, handed
    # none lost: each is handed out (running), back in ready (its batch ran short), or a dead one quarantined
    members = await store.all_members("deb")
    assert members[VMState.RUNNING] == set(handed)
    assert members[VMState.QUARANTINE] <= {f"vm{i}" for i in range(0, 30, 3)}
    assert members[VMState.RUNNING] | members[VMState.READY] | members[VMState.QUARANTINE] == {
        f"vm{i}" for i in range(30)
    }
    assert sum(len(names) for names in members.values()) == 30
    listeners.close_all()

"""The vSphere provider against vcsim: a managed pool end to end, VM tasks, linked clones, bad
configuration, a vCenter restart and host placement. What vcsim cannot show is listed in its fixture."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from tests.support.fixtures.vcsim import CLUSTER, TEMPLATE, Vcsim, create_vm_on
from tests.support.pools import run_until, settle
from tests.support.servers import ApiThread
from tests.support.waiting import until
from vmpooler.config import parse_settings
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout
from vmpooler.manager.loop import Manager
from vmpooler.providers.vsphere import VSphereProvider
from vmpooler.providers.vsphere.connection import SessionPool
from vmpooler.providers.vsphere.options import LINKED_CLONE_SNAPSHOT
from vmpooler.providers.vsphere.placement import host_loads, least_used
from vmpooler.providers.vsphere.tasks import wait_for_task
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store


@pytest.fixture
async def provider(vcsim: Vcsim) -> AsyncIterator[VSphereProvider]:
    made = VSphereProvider("vsphere", vcsim.options())
    yield made
    await made.close()


def _name() -> str:
    return f"vm-{uuid.uuid4().hex[:8]}"


def _snapshot_names(vcsim: Vcsim, vm: vim.VirtualMachine) -> list[str]:
    snapshots = vcsim.read(vm, "snapshot").get("snapshot")
    names: list[str] = []
    pending = list(snapshots.rootSnapshotList) if snapshots else []
    while pending:
        node = pending.pop(0)
        names.append(node.name)
        pending += list(node.childSnapshotList)
    return names


def _disks(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualDisk]:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


async def test_manager_fills_a_pool_and_a_checkout_round_trips_through_the_api(
    vcsim: Vcsim, provider: VSphereProvider, store: Store, redis_port: int
) -> None:
    pool = vcsim.pool(datastore="LocalDS_0")
    raw: dict[str, Any] = {
        "pools": [{"name": pool.name, "template": TEMPLATE, "size": 2, "provider": "vsphere", **pool.provider_options}],
        "config": {"check_loop_delay_min": 0.05},
        "providers": {"vsphere": vcsim.options().model_dump(mode="json") | {"password": vcsim.password}},
    }
    settings, _ = parse_settings(raw, env={})
    manager = Manager(settings, store, {"vsphere": provider}, call_timeout=30, ready_poll_interval=0.05)
    target = manager.reconcilers[pool.name].ctx.target
    await manager.register_pools()

    async def ready(n: int) -> bool:
        return len(await store.members(pool.name, VMState.READY)) == n

    await run_until(manager, lambda: ready(2), timeout=30)
    first_ready = await store.members(pool.name, VMState.READY)
    assert vcsim.folder_vm_names(pool.provider_options["folder"]) == first_ready

    with ApiThread(settings, redis_port) as api, httpx.Client(base_url=api.url, timeout=15) as client:
        checkout = client.post(f"/api/v3/vm/{pool.name}").json()
        hostname = checkout[pool.name]["hostname"]
        assert hostname in first_ready
        info = await provider.get_vm(target, hostname)
        assert info is not None and info.hostname == hostname and info.ip and info.powered_on
        assert (await store.vm(hostname)).get("ip") == info.ip  # the address the guest tools reported
        assert client.delete(f"/api/v3/vm/{hostname}").json() == {"ok": True}

    async def returned_and_refilled() -> bool:
        gone = await provider.get_vm(target, hostname) is None
        return gone and await ready(2)

    await run_until(manager, returned_and_refilled, timeout=30)
    await settle(manager)
    members = await store.all_members(pool.name)
    known = set().union(*(members[state] for state in LIVE_STATES))
    assert hostname not in known
    assert vcsim.folder_vm_names(pool.provider_options["folder"]) == known == set(await provider.vms_in_pool(target))


async def test_snapshot_revert_disk_and_user_tag_reach_the_simulator(vcsim: Vcsim, provider: VSphereProvider) -> None:
    pool = vcsim.pool(datastore="LocalDS_1")
    name = _name()
    info = await provider.create_vm(pool, name)
    assert info.extra["datastore"] == "LocalDS_1"  # relocated to the pool's datastore
    vm = vcsim.find(f"{pool.provider_options['folder']}/{name}")
    disks_before = len(_disks(vm))

    await provider.create_snapshot(pool, name, "first")
    await provider.create_snapshot(pool, name, "second")
    with pytest.raises(ProviderError, match="already has a snapshot 'second'"):
        await provider.create_snapshot(pool, name, "second")
    await provider.revert_snapshot(pool, name, "first")
    await provider.create_disk(pool, name, 3)
    await provider.tag_vm_user(pool, name, "alice")

    assert _snapshot_names(vcsim, vm) == ["first", "second"]
    current = next(node for node in vm.snapshot.rootSnapshotList if node.name == "first")
    assert vm.snapshot.currentSnapshot == current.snapshot
    disks = _disks(vm)
    assert len(disks) == disks_before + 1
    added = disks[-1]
    assert added.capacityInKB == 3 * 1024 * 1024 and added.backing.thinProvisioned
    assert added.backing.fileName.startswith("[LocalDS_1]")
    described = await provider.get_vm(pool, name)
    assert described is not None and described.extra["user"] == "alice"
    with pytest.raises(PermanentProviderError, match="no snapshot 'third'"):
        await provider.revert_snapshot(pool, name, "third")
    with pytest.raises(PermanentProviderError, match="no VM"):
        await provider.create_snapshot(pool, _name(), "first")
    await provider.destroy_vm(pool, name)


async def test_linked_clones_share_one_base_snapshot_and_full_clones_take_none(
    vcsim: Vcsim, provider: VSphereProvider
) -> None:
    bare = vcsim.make_template(f"bare-{uuid.uuid4().hex[:6]}")
    golden = vcsim.make_template(f"golden-{uuid.uuid4().hex[:6]}")
    WaitForTask(golden.CreateSnapshot_Task(name="golden", description="", memory=False, quiesce=False))
    full_template = vcsim.make_template(f"full-{uuid.uuid4().hex[:6]}")
    linked = vcsim.pool(template=f"Templates/{bare.name}", create_linked_clone=True)
    linked_to_golden = vcsim.pool(template=f"Templates/{golden.name}", create_linked_clone=True)
    full = vcsim.pool(template=f"/DC0/vm/Templates/{full_template.name}")  # a full path; full clones by default

    # three clones at once must take the template's snapshot once, not three times
    await asyncio.gather(*(provider.create_vm(linked, _name()) for _ in range(3)))
    await provider.create_vm(linked, _name())
    await provider.create_vm(linked_to_golden, _name())
    await provider.create_vm(full, _name())

    assert _snapshot_names(vcsim, bare) == [LINKED_CLONE_SNAPSHOT]
    assert _snapshot_names(vcsim, golden) == ["golden"]  # the template's own current snapshot is used
    assert _snapshot_names(vcsim, full_template) == []
    assert len(await provider.vms_in_pool(linked)) == 4 and len(await provider.vms_in_pool(full)) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"pool '\w+-\w+': template 'Templates/nope' not found in datacenter 'DC0'"),
        ({"datastore": "nope"}, r"datastore 'nope' not found in datacenter 'DC0'"),
        ({"clone_target": "nope"}, r"clone_target 'nope' is neither a cluster nor a host in datacenter 'DC0'"),
        ({"datacenter": "DC9"}, r"datacenter 'DC9' not found"),
        ({"create_linked_clone": "maybe"}, r"create_linked_clone"),
    ],
)
async def test_bad_pool_configuration_is_permanent_and_named(
    vcsim: Vcsim, provider: VSphereProvider, options: dict[str, Any], message: str
) -> None:
    template = "Templates/nope" if not options else TEMPLATE
    pool = vcsim.pool(template=template, **options)
    with pytest.raises(PermanentProviderError, match=message):
        await provider.create_vm(pool, _name())
    assert vcsim.folder_vm_names(pool.provider_options["folder"]) == set()


async def test_rejected_login_is_permanent_and_keeps_the_password_secret(vcsim: Vcsim) -> None:
    wrong = VSphereProvider("vsphere", vcsim.options(password="not-the-password"))
    with pytest.raises(PermanentProviderError, match=f"vCenter rejected the login for user '{vcsim.user}'") as caught:
        await wrong.vms_in_pool(vcsim.pool())
    assert "not-the-password" not in str(caught.value)
    assert "not-the-password" not in repr(wrong.describe())
    await wrong.close()


async def test_unreachable_vcenter_is_retriable_and_an_untrusted_certificate_is_not(vcsim: Vcsim) -> None:
    nobody = VSphereProvider("vsphere", vcsim.options(port=free_port()))
    with pytest.raises(ProviderError, match="cannot reach vCenter") as refused:
        await nobody.vms_in_pool(vcsim.pool())
    assert not isinstance(refused.value, PermanentProviderError)
    await nobody.close()
    strict = VSphereProvider("vsphere", vcsim.options(insecure=False))
    with pytest.raises(PermanentProviderError, match="certificate is not trusted"):
        await strict.vms_in_pool(vcsim.pool())
    await strict.close()


async def test_provider_logs_in_again_after_vcenter_restarts(vcsim: Vcsim, provider: VSphereProvider) -> None:
    pool = vcsim.pool()
    before = _name()
    await provider.create_vm(pool, before)

    vcsim.stop()
    try:
        with pytest.raises(ProviderError) as down:
            await provider.vms_in_pool(pool)
        assert not isinstance(down.value, PermanentProviderError)  # unreachable: worth retrying
    finally:
        vcsim.start()  # same port, fresh inventory: every session and VM made before is gone

    assert await provider.vms_in_pool(pool) == []
    after = _name()
    await provider.create_vm(pool, after)
    assert await provider.vms_in_pool(pool) == [after]


async def test_session_terminated_by_vcenter_is_reestablished(vcsim: Vcsim, provider: VSphereProvider) -> None:
    pool = vcsim.pool()
    await provider.vms_in_pool(pool)  # logs in
    manager = vcsim.admin().content.sessionManager
    mine = manager.currentSession.key
    for session in manager.sessionList:
        if session.key != mine:
            manager.TerminateSession([session.key])

    name = _name()
    await provider.create_vm(pool, name)
    assert await provider.vms_in_pool(pool) == [name]


async def test_clone_goes_to_the_least_used_usable_host_of_the_cluster(
    vcsim: Vcsim, provider: VSphereProvider, caplog: pytest.LogCaptureFixture
) -> None:
    admin = vcsim.admin()
    cluster = admin.content.searchIndex.FindByInventoryPath(f"DC0/host/{CLUSTER}")
    counts = {host.name: len(host.vm) for host in cluster.host}
    emptiest = sorted(counts)[1]  # a middle one, so neither first nor last by name wins by accident
    extra = [
        create_vm_on(admin, host, f"load-{uuid.uuid4().hex[:6]}")
        for host, count in counts.items()
        if host != emptiest
        for _ in range(max(0, counts[emptiest] + 1 - count))
    ]
    pool = vcsim.pool()
    chosen = re.compile(r"onto host (\S+),")
    try:
        with caplog.at_level(logging.INFO, logger="vmpooler.providers.vsphere"):
            await provider.create_vm(pool, _name())
            first = chosen.findall(caplog.text)
            host = next(h for h in cluster.host if h.name == emptiest)
            WaitForTask(host.EnterMaintenanceMode_Task(timeout=0))
            caplog.clear()
            await provider.create_vm(pool, _name())
            second = chosen.findall(caplog.text)
    finally:
        WaitForTask(next(h for h in cluster.host if h.name == emptiest).ExitMaintenanceMode_Task(timeout=0))
        for vm in extra:
            WaitForTask(vm.Destroy_Task())
    assert first == [emptiest]
    assert second and second[0] != emptiest and second[0] in counts  # a host in maintenance is skipped


async def test_clones_still_in_flight_count_towards_a_hosts_load(vcsim: Vcsim) -> None:
    admin = vcsim.admin()
    cluster = admin.content.searchIndex.FindByInventoryPath(f"DC0/host/{CLUSTER}")
    loads = host_loads(admin.content, list(cluster.host))
    idle = least_used(loads, {}, 90)
    assert idle is not None
    busy_with_clones = {idle.name: max(load.vms for load in loads) + 1}
    other = least_used(loads, busy_with_clones, 90)
    assert other is not None and other.name != idle.name
    assert least_used(loads, {}, limit=0.001) is None  # every host counts as too busy


async def test_a_pool_sees_only_its_own_vms_in_a_shared_folder(vcsim: Vcsim, provider: VSphereProvider) -> None:
    shared = vcsim.pool()
    other = PoolTarget(f"{shared.name}-other", shared.template, dict(shared.provider_options))
    mine, theirs = _name(), _name()
    await provider.create_vm(shared, mine)
    await provider.create_vm(other, theirs)
    stranger = create_vm_on(vcsim.admin(), f"{CLUSTER}_H0", f"stray-{uuid.uuid4().hex[:6]}")
    WaitForTask(vcsim.find(shared.provider_options["folder"]).MoveIntoFolder_Task([stranger]))

    assert await provider.vms_in_pool(shared) == [mine]
    assert await provider.vms_in_pool(other) == [theirs]
    await provider.destroy_vm(shared, stranger.name)  # not the pool's: left alone
    assert stranger.name in vcsim.folder_vm_names(shared.provider_options["folder"])


async def test_ready_port_must_accept_a_connection_when_set(vcsim: Vcsim, provider: VSphereProvider) -> None:
    pool = vcsim.pool(ready_port=free_port())
    name = _name()
    await provider.create_vm(pool, name)
    vm = vcsim.find(f"{pool.provider_options['folder']}/{name}")
    await run_until_ready_reported(vcsim, vm)
    loopback = [vim.option.OptionValue(key="SET.guest.ipAddress", value="127.0.0.1")]
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=loopback)))  # a guest we can reach

    assert not await provider.vm_ready(pool, name)  # nothing listens on the port yet
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", pool.provider_options["ready_port"])
    async with server:
        assert await provider.vm_ready(pool, name)


async def test_a_failed_task_raises_vcenters_fault(vcsim: Vcsim, provider: VSphereProvider) -> None:
    pool = vcsim.pool()
    name = _name()
    await provider.create_vm(pool, name)
    vm = vcsim.find(f"{pool.provider_options['folder']}/{name}")
    sessions = SessionPool("test", vcsim.options())
    try:
        with pytest.raises(ProviderError, match=r"destroying it powered on: vim\.fault\.InvalidPowerState"):
            await wait_for_task(sessions, vm.Destroy_Task(), "destroying it powered on", timeout=10)
    finally:
        await sessions.close()


async def run_until_ready_reported(vcsim: Vcsim, vm: vim.VirtualMachine, timeout: float = 10) -> None:
    """Wait for the simulated guest tools to report the VM (they would overwrite a test's address)."""

    async def address() -> object:
        return vcsim.read(vm, "guest.ipAddress").get("guest.ipAddress")

    await until(address, "the guest tools to report the VM", timeout=timeout)


async def test_sessions_are_lent_one_piece_of_work_at_a_time(vcsim: Vcsim) -> None:
    sessions = SessionPool("test", vcsim.options(connection_pool_size=2, connection_pool_timeout=1))
    in_use: set[int] = set()
    shared: list[int] = []

    def work(content: Any, seconds: float = 0.4) -> None:
        if id(content) in in_use:
            shared.append(id(content))
        in_use.add(id(content))
        time.sleep(seconds)
        in_use.discard(id(content))

    try:
        holders = [asyncio.create_task(sessions.run(lambda c: work(c, 1.3), "holding a session")) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(ProviderTimeout, match="no free vCenter connection within 1s"):
            await sessions.run(work, "waiting for a session")
        await asyncio.gather(*holders)

        # a caller that gives up must not hand back a session its thread is still using
        abandoned = asyncio.create_task(sessions.run(work, "soon abandoned"))
        await asyncio.sleep(0.1)
        abandoned.cancel()
        await asyncio.gather(sessions.run(work, "next"), sessions.run(work, "and the next"))
        assert shared == []
    finally:
        await sessions.close()

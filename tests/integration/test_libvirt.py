"""The libvirt provider with guests that really boot, on the session's private libvirtd: through the manager and
the API, across a new provider and a restarted daemon, snapshots and hot-plugged disks, and the errors bad input gets.

Every VM boots the cached test guest (tests/support/guest.py), whose port 22 answers
``SSH-2.0-vmpooler_testguest <hostname> disk=ok count=<n> disks=vda[,...]``. Boots are few: the
machine may have 2 cores and TCG emulation when KVM does not work.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures.libvirtd import LibvirtDaemon
from tests.support.guest import BANNER_PREFIX, Guest
from tests.support.real_vms import lent_guest
from tests.support.waiting import until
from vmpooler.config import Settings
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.providers.localvm import images
from vmpooler.providers.localvm.probe import ssh_banner
from vmpooler.store.redis import Store

libvirt = pytest.importorskip("libvirt", reason="the libvirt Python binding is not installed (the libvirt extra)")
from vmpooler.providers.libvirt import LibvirtOptions, LibvirtProvider  # noqa: E402  (needs the binding)

BOOT_TIMEOUT = 120.0  # seconds; a TCG boot takes 5-12 s alone, more on a busy machine


def libvirt_options(daemon: LibvirtDaemon, guest: Guest, state: Path, **extra: Any) -> dict[str, Any]:
    return {
        "uri": daemon.uri,
        "state_dir": str(state),
        "memory_mb": 256,
        "kernel": str(guest.kernel),
        "initrd": str(guest.initrd),
        **extra,
    }


def provider_for(daemon: LibvirtDaemon, guest: Guest, state: Path, **extra: Any) -> LibvirtProvider:
    return LibvirtProvider("libvirt", LibvirtOptions(**libvirt_options(daemon, guest, state, **extra)))


async def wait_ready(provider: LibvirtProvider, pool: PoolTarget, name: str) -> None:
    await until(lambda: provider.vm_ready(pool, name), f"{name} to boot", timeout=BOOT_TIMEOUT, pause=0.5)


async def banner(address: str, wait: float = 30.0, until: Callable[[str], bool] = lambda line: True) -> str:
    """The guest's banner at ``host:port``, waiting up to ``wait`` seconds for one that satisfies ``until``."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + wait
    while True:
        line = await ssh_banner(host, int(port), 5.0)
        if line is not None and until(line):
            return line
        assert time.monotonic() < deadline, f"no matching banner from {address}; last: {line!r}"
        await asyncio.sleep(0.3)


def banner_count(line: str) -> int:
    return int(next(word for word in line.split() if word.startswith("count="))[len("count=") :])


def leftovers(state: Path, pool: str) -> list[str]:
    directory = state / pool
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def running(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists()


def domain_xml(daemon: LibvirtDaemon, name: str) -> ET.Element:
    conn = libvirt.open(daemon.uri)
    try:
        return ET.fromstring(conn.lookupByName(name).XMLDesc(0))
    finally:
        conn.close()


async def test_a_pool_fills_with_a_real_guest_that_a_user_checks_out_and_returns(
    test_guest: Guest,
    libvirtd: LibvirtDaemon,
    libvirt_state_dir: Path,
    store: Store,
    redis_port: int,
    settings_factory: Callable[..., Settings],
) -> None:
    pool = {"name": "tiny", "template": str(test_guest.template_disk), "size": 1, "provider": "libvirt"}
    options = libvirt_options(libvirtd, test_guest, libvirt_state_dir)
    settings = settings_factory([pool], providers={"libvirt": options}, config={"check_loop_delay_min": 0.5})
    provider = registry.build("libvirt", settings.provider_options("libvirt"))  # through the entry point
    assert isinstance(provider, LibvirtProvider)
    manager = Manager(settings, store, {"libvirt": provider}, call_timeout=BOOT_TIMEOUT, ready_poll_interval=0.5)
    async with lent_guest(manager, store, settings, redis_port, "tiny", BOOT_TIMEOUT, banner) as hostname:
        assert hostname in libvirtd.domain_names()
        pid = libvirtd.qemu_pid(hostname)
        assert pid is not None
    assert hostname not in libvirtd.domain_names()
    assert libvirtd.qemu_pid(hostname) is None and not running(pid)
    assert leftovers(libvirt_state_dir, "tiny") == []
    assert await provider.vms_in_pool(manager.reconcilers["tiny"].ctx.target) == []
    await provider.close()


@pytest.mark.timeout(300)
async def test_vms_outlive_their_provider_and_a_daemon_restart(
    test_guest: Guest, libvirtd: LibvirtDaemon, libvirt_state_dir: Path
) -> None:
    pool = PoolTarget("crash", str(test_guest.template_disk))
    first = provider_for(libvirtd, test_guest, libvirt_state_dir)
    names = ["crash-a", "crash-b"]
    for name in names:
        await first.create_vm(pool, name)
    for name in names:
        await wait_ready(first, pool, name)
    pids = {name: libvirtd.qemu_pid(name) for name in names}
    assert None not in pids.values()

    libvirtd.restart_libvirtd()  # the daemon goes away under the open connection; the guests run on
    assert await first.vms_in_pool(pool) == names  # the same provider connects again by itself
    assert {name: libvirtd.qemu_pid(name) for name in names} == pids
    del first  # as a killed manager: nothing is shut down

    second = provider_for(libvirtd, test_guest, libvirt_state_dir)
    assert await second.vms_in_pool(pool) == names
    for name in names:
        found = await second.get_vm(pool, name)
        assert found is not None and found.powered_on, libvirtd.debug_log(name)
        assert await second.vm_ready(pool, name)  # the guest answers through its forward still
    for name in names:
        await second.destroy_vm(pool, name)

    assert await second.vms_in_pool(pool) == []
    assert not set(names) & set(libvirtd.domain_names())
    for name, pid in pids.items():
        assert not running(pid), f"qemu {pid} of {name} still runs"
    assert leftovers(libvirt_state_dir, "crash") == []
    assert [path.name for path in (libvirt_state_dir / "ports").iterdir()] == [".lock"]  # every port released
    await second.close()


@pytest.mark.timeout(300)
async def test_snapshot_revert_and_a_new_disk_on_a_running_vm(
    test_guest: Guest, libvirtd: LibvirtDaemon, libvirt_state_dir: Path
) -> None:
    provider = provider_for(libvirtd, test_guest, libvirt_state_dir)
    pool = PoolTarget("snap", str(test_guest.template_disk))
    info = await provider.create_vm(pool, "snap-vm")
    assert info.ip is not None
    await wait_ready(provider, pool, "snap-vm")

    counted = banner_count(await banner(info.ip))
    await provider.create_snapshot(pool, "snap-vm", "clean")
    conn = libvirt.open(libvirtd.uri)
    try:
        assert conn.lookupByName("snap-vm").snapshotListNames(0) == ["clean"]
    finally:
        conn.close()
    assert banner_count(await banner(info.ip)) == counted + 1
    assert banner_count(await banner(info.ip)) == counted + 2
    await provider.revert_snapshot(pool, "snap-vm", "clean")
    assert banner_count(await banner(info.ip)) == counted + 1  # the guest's memory went back in time
    with pytest.raises(PermanentProviderError, match="'missing'"):
        await provider.revert_snapshot(pool, "snap-vm", "missing")

    await provider.create_disk(pool, "snap-vm", 1)
    disks = {
        disk.find("target").get("dev"): disk.find("source").get("file")  # type: ignore[union-attr]
        for disk in domain_xml(libvirtd, "snap-vm").iterfind("devices/disk")
    }
    vm_dir = libvirt_state_dir / "snap" / "snap-vm"
    assert disks == {"vda": str(vm_dir / "root.qcow2"), "vdb": str(vm_dir / "disk1.qcow2")}
    assert (await images.info("qemu-img", Path(disks["vdb"])))["virtual-size"] == 1024**3
    line = await banner(info.ip, until=lambda line: line.endswith("disks=vda,vdb"))
    assert line.startswith(f"{BANNER_PREFIX} snap-vm")  # the guest sees the new disk

    await provider.destroy_vm(pool, "snap-vm")
    assert "snap-vm" not in libvirtd.domain_names()
    assert leftovers(libvirt_state_dir, "snap") == []
    await provider.close()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"template": "/nonexistent/base.qcow2"}, "template /nonexistent/base.qcow2"),
        ({"kernel": "/nonexistent/vmlinuz"}, "kernel /nonexistent/vmlinuz"),
        ({"network": "bridge", "bridge": "vmpnobr0"}, "vmpnobr0"),
        ({"machine_type": "no-such-machine"}, "no-such-machine"),
    ],
)
async def test_bad_input_is_a_permanent_error_naming_the_problem(
    test_guest: Guest, libvirtd: LibvirtDaemon, libvirt_state_dir: Path, change: dict[str, Any], named: str
) -> None:
    template = change.pop("template", str(test_guest.template_disk))
    provider = provider_for(libvirtd, test_guest, libvirt_state_dir, accel="tcg", **change)
    pool = PoolTarget("bad", template)

    with pytest.raises(PermanentProviderError) as raised:
        await provider.create_vm(pool, "bad-vm")

    assert named in str(raised.value) and "pool 'bad'" in str(raised.value), raised.value
    await provider.destroy_vm(pool, "bad-vm")  # whatever a failed start left is removable
    assert await provider.vms_in_pool(pool) == []
    assert "bad-vm" not in libvirtd.domain_names()
    assert leftovers(libvirt_state_dir, "bad") == []
    await provider.close()


async def test_an_unreachable_daemon_is_a_retriable_error_not_a_failed_start(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-libvirt-sock"
    provider = LibvirtProvider("libvirt", LibvirtOptions(uri=uri, state_dir=str(tmp_path)))  # connects to nothing yet

    with pytest.raises(ProviderError) as raised:
        await provider.vms_in_pool(PoolTarget("any", "/srv/base.qcow2"))

    assert not isinstance(raised.value, PermanentProviderError)
    assert "no-such-libvirt-sock" in str(raised.value)
    await provider.close()

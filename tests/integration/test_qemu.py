"""The qemu provider with guests that really boot: through the manager and the API, across a killed
manager, snapshots and hot-plugged disks, and the errors bad input gets.

Every VM boots the cached test guest (tests/support/guest.py), whose port 22 answers
``SSH-2.0-vmpooler_testguest <hostname> disk=ok count=<n> disks=vda[,...]``. Boots are few: the
machine may have 2 cores and TCG emulation when KVM does not work.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import redis
import yaml

from tests.support.fixtures.guest import running_vms_under
from tests.support.guest import BANNER_PREFIX, Guest
from tests.support.real_vms import lent_guest
from tests.support.waiting import until
from vmpooler.config import Settings
from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError
from vmpooler.manager.loop import Manager
from vmpooler.providers import registry
from vmpooler.providers.localvm import images
from vmpooler.providers.localvm.probe import ssh_banner
from vmpooler.providers.localvm.records import VMRecord
from vmpooler.providers.qemu import QemuOptions, QemuProvider, process, qmp
from vmpooler.store.redis import Store

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
BOOT_TIMEOUT = 120.0  # seconds; a TCG boot takes 5-12 s alone, more on a busy machine


def qemu_options(guest: Guest, state: Path, **extra: Any) -> dict[str, Any]:
    return {
        "state_dir": str(state),
        "memory_mb": 256,
        "kernel": str(guest.kernel),
        "initrd": str(guest.initrd),
        "shutdown_grace": 5,
        **extra,
    }


def provider_for(guest: Guest, state: Path, **extra: Any) -> QemuProvider:
    return QemuProvider("qemu", QemuOptions(**qemu_options(guest, state, **extra)))


async def wait_ready(provider: QemuProvider, pool: PoolTarget, name: str) -> None:
    await until(lambda: provider.vm_ready(pool, name), f"{name} to boot", timeout=BOOT_TIMEOUT, pause=0.5)


async def banner(
    address: str, wait: float = 30.0, until: Callable[[str], bool] = lambda line: True, console: Path | None = None
) -> str:
    """The guest's banner at ``host:port``, waiting up to ``wait`` seconds for one that satisfies ``until``."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + wait
    while True:
        line = await ssh_banner(host, int(port), 5.0)
        if line is not None and until(line):
            return line
        if time.monotonic() > deadline:
            tail = (await asyncio.to_thread(console.read_text, errors="replace"))[-3000:] if console else ""
            raise AssertionError(f"no matching banner from {address}; last: {line!r}\n{tail}")
        await asyncio.sleep(0.3)


def banner_count(line: str) -> int:
    return int(next(word for word in line.split() if word.startswith("count="))[len("count=") :])


def record_of(state: Path, pool: str, name: str) -> VMRecord:
    return VMRecord.model_validate_json((state / pool / f"{name}.json").read_bytes())


def leftovers(state: Path, pool: str) -> list[str]:
    directory = state / pool
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


async def test_a_pool_fills_with_a_real_guest_that_a_user_checks_out_and_returns(
    test_guest: Guest,
    qemu_state_dir: Path,
    store: Store,
    redis_port: int,
    settings_factory: Callable[..., Settings],
) -> None:
    pool = {"name": "tiny", "template": str(test_guest.template_disk), "size": 1, "provider": "qemu"}
    settings = settings_factory(
        [pool], providers={"qemu": qemu_options(test_guest, qemu_state_dir)}, config={"check_loop_delay_min": 0.5}
    )
    provider = registry.build("qemu", settings.provider_options("qemu"))  # through the entry point
    assert isinstance(provider, QemuProvider)
    manager = Manager(settings, store, {"qemu": provider}, call_timeout=BOOT_TIMEOUT, ready_poll_interval=0.5)
    async with lent_guest(manager, store, settings, redis_port, "tiny", BOOT_TIMEOUT, banner) as hostname:
        record = record_of(qemu_state_dir, "tiny", hostname)
        assert process.is_ours(record.pid, record.uid)
    assert not process.is_ours(record.pid, record.uid)
    assert leftovers(qemu_state_dir, "tiny") == []
    assert await provider.vms_in_pool(manager.reconcilers["tiny"].ctx.target) == []


async def test_a_new_provider_finds_and_destroys_the_vms_of_one_that_died(
    test_guest: Guest, qemu_state_dir: Path
) -> None:
    pool = PoolTarget("crash", str(test_guest.template_disk))
    first = provider_for(test_guest, qemu_state_dir)
    names = ["crash-a", "crash-b"]
    for name in names:
        await first.create_vm(pool, name)
    records = [record_of(qemu_state_dir, "crash", name) for name in names]
    del first  # as a killed manager: nothing is shut down, the QEMU daemons run on

    second = provider_for(test_guest, qemu_state_dir)
    assert await second.vms_in_pool(pool) == names
    for name in names:
        found = await second.get_vm(pool, name)
        assert found is not None and found.powered_on
    for name in names:
        await second.destroy_vm(pool, name)

    assert await second.vms_in_pool(pool) == []
    for record in records:
        assert record.pid is not None
        assert not process.is_ours(record.pid, record.uid), f"qemu {record.pid} of {record.name} still runs"
    assert leftovers(qemu_state_dir, "crash") == []
    assert [path.name for path in (qemu_state_dir / ".ports").iterdir()] == [".lock"]  # every port released


@pytest.fixture
def manager_process(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    """Starts ``vmpooler manager`` processes; any still running at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    # the original's environment overrides (REDIS_SERVER, ...) must not point the manager elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "VMPOOLER_"))}

    def start(config: Path) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"manager-{len(started)}.log").open("wb")
        logs.append(log)
        argv = [VMPOOLER, "manager", "-c", str(config), "--state-dir", str(tmp_path / "manager")]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        started.append(child)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            # its own shutdown is not under test (it would wait for a booting clone); qemu_state_dir
            # then kills whatever VMs it left
            child.kill()
            child.wait()
    for log in logs:
        log.close()


@pytest.mark.timeout(300)
async def test_a_vm_left_by_a_killed_manager_is_destroyed_by_the_next(
    test_guest: Guest,
    qemu_state_dir: Path,
    redis_port: int,
    store: Store,
    tmp_path: Path,
    manager_process: Callable[[Path], subprocess.Popen[bytes]],
) -> None:
    config = tmp_path / "vmpooler.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                ":redis:": {"server": "127.0.0.1", "port": redis_port},
                ":config:": {"check_loop_delay_min": 0.5, "check_loop_delay_max": 2},
                ":providers:": {":qemu:": qemu_options(test_guest, qemu_state_dir)},
                ":pools:": [{"name": "tiny", "template": str(test_guest.template_disk), "size": 1, "provider": "qemu"}],
            }
        )
    )
    first = manager_process(config)
    deadline = time.monotonic() + 60
    while not (booting := running_vms_under(qemu_state_dir)):
        assert first.poll() is None, (tmp_path / "manager-0.log").read_text()
        assert time.monotonic() < deadline, "the manager started no VM within 60s"
        await asyncio.sleep(0.2)
    ((metadata, pid),) = booting.items()
    stray = metadata.stem
    record = record_of(qemu_state_dir, "tiny", stray)
    first.send_signal(signal.SIGKILL)  # mid-boot: the clone never finishes
    first.wait(10)
    assert running_vms_under(qemu_state_dir) == {metadata: pid}  # the VM outlives its manager
    # and Redis lost what that manager wrote, so only the provider's inventory still knows the VM
    redis.Redis(port=redis_port).flushall()

    manager_process(config)

    deadline = time.monotonic() + 90
    while metadata.exists() or pid in running_vms_under(qemu_state_dir).values():
        assert time.monotonic() < deadline, f"stray VM {stray} still there: {leftovers(qemu_state_dir, 'tiny')}"
        await asyncio.sleep(0.5)
    assert not process.is_ours(pid, record.uid)
    assert not (qemu_state_dir / "tiny" / f"{stray}.qcow2").exists()
    # the new manager discovered it as a leak (a name Redis never had) and destroyed it
    assert stray not in set().union(*(await store.all_members("tiny")).values())


@pytest.mark.timeout(300)
async def test_snapshot_revert_and_a_new_disk_on_a_running_vm(test_guest: Guest, qemu_state_dir: Path) -> None:
    provider = provider_for(test_guest, qemu_state_dir)
    pool = PoolTarget("snap", str(test_guest.template_disk))
    info = await provider.create_vm(pool, "snap-vm")
    assert info.ip is not None
    await wait_ready(provider, pool, "snap-vm")
    overlay = Path(info.extra["overlay"])

    counted = banner_count(await banner(info.ip))
    await provider.create_snapshot(pool, "snap-vm", "clean")
    assert await images.snapshots("qemu-img", overlay) == ["clean"]
    assert banner_count(await banner(info.ip)) == counted + 1
    assert banner_count(await banner(info.ip)) == counted + 2
    await provider.revert_snapshot(pool, "snap-vm", "clean")
    assert banner_count(await banner(info.ip)) == counted + 1  # the guest's memory went back in time
    with pytest.raises(PermanentProviderError, match=r"no snapshot 'missing'"):
        await provider.revert_snapshot(pool, "snap-vm", "missing")

    await provider.create_disk(pool, "snap-vm", 1)
    async with qmp.session(Path(info.extra["qmp_socket"])) as monitor:
        block = await monitor.execute("query-block")
    disk = next(entry for entry in block if entry.get("inserted", {}).get("node-name") == "disk1")
    assert disk["inserted"]["image"]["virtual-size"] == 1024**3
    console = Path(info.extra["console_log"])
    line = await banner(info.ip, until=lambda line: line.endswith("disks=vda,vdb"), console=console)
    assert line.startswith(f"{BANNER_PREFIX} snap-vm")  # the guest sees the new disk

    await provider.destroy_vm(pool, "snap-vm")
    assert leftovers(qemu_state_dir, "snap") == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"template": "/nonexistent/base.qcow2"}, "template /nonexistent/base.qcow2"),
        ({"kernel": "/nonexistent/vmlinuz"}, "kernel /nonexistent/vmlinuz"),
        ({"qemu_binary": "qemu-system-nonexistent"}, "qemu-system-nonexistent is not installed"),
        ({"extra_args": ["-device", "no-such-device"]}, "'no-such-device' is not a valid device model name"),
    ],
)
async def test_bad_input_is_a_permanent_error_naming_the_problem(
    test_guest: Guest, qemu_state_dir: Path, change: dict[str, Any], named: str
) -> None:
    template = change.pop("template", str(test_guest.template_disk))
    provider = provider_for(test_guest, qemu_state_dir, accel="tcg", **change)
    pool = PoolTarget("bad", template)

    with pytest.raises(PermanentProviderError) as raised:
        await provider.create_vm(pool, "bad-vm")

    assert named in str(raised.value) and "pool 'bad'" in str(raised.value)
    await provider.destroy_vm(pool, "bad-vm")  # whatever a failed start left is removable
    assert await provider.vms_in_pool(pool) == []
    assert leftovers(qemu_state_dir, "bad") == []

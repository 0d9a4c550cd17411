"""The local-VM building blocks that need no VM: port reservations, metadata files, readiness probes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from vmpooler.errors import ProviderError
from vmpooler.providers.localvm import accel, probe
from vmpooler.providers.localvm.ports import PortAllocator
from vmpooler.providers.localvm.records import RecordStore, VMRecord
from vmpooler.store.embedded import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def test_two_allocators_on_one_directory_never_hand_out_one_port(tmp_path: Path) -> None:
    owners = [tmp_path / f"vm{i}.json" for i in range(6)]
    for owner in owners:
        owner.touch()
    first, second = (PortAllocator(tmp_path / ".ports", 16100, 16105) for _ in range(2))  # as two processes

    ports = [(first if i % 2 else second).allocate(owner) for i, owner in enumerate(owners)]

    assert sorted(ports) == list(range(16100, 16106))
    with pytest.raises(ProviderError, match="no free port"):
        first.allocate(owners[0])
    first.release(ports[3], owners[3])
    assert second.allocate(owners[3]) == ports[3]


def test_a_port_in_use_is_skipped_and_a_dead_owners_port_is_reclaimed(tmp_path: Path) -> None:
    port = free_port()
    allocator = PortAllocator(tmp_path / ".ports", port, port)
    for owner in ("a", "b"):
        (tmp_path / f"{owner}.json").touch()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(ProviderError, match="no free port"):
            allocator.allocate(tmp_path / "a.json")
    assert allocator.allocate(tmp_path / "a.json") == port
    (tmp_path / "a.json").unlink()  # the VM is gone, its reservation was never released

    assert allocator.allocate(tmp_path / "b.json") == port


def test_release_by_another_owner_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.json").touch()
    allocator = PortAllocator(tmp_path / ".ports", 16110, 16110)
    port = allocator.allocate(tmp_path / "a.json")
    allocator.release(port, tmp_path / "b.json")
    with pytest.raises(ProviderError):
        allocator.allocate(tmp_path / "c.json")


def test_metadata_is_created_once_and_listed_per_pool(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    files = store.files("pool-a", "vm-1")
    record = VMRecord(pool="pool-a", name="vm-1", uid="u1", template="t", created=1.0, mac="m", network="user")

    store.create(files, record)
    with pytest.raises(ProviderError, match="already exists"):
        store.create(files, record)
    record.port = 17000
    store.save(files, record)

    assert store.names("pool-a") == ["vm-1"] and store.names("pool-b") == []
    assert store.load(files) == record
    store.remove(files, record)
    assert store.load(files) is None and list(files.directory.iterdir()) == []


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_an_accepting_port_with_nobody_behind_it_is_not_ready() -> None:
    async def forward_without_guest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # what user-mode networking does when nothing in the guest listens

    async with serving(forward_without_guest) as port:
        assert await probe.tcp_open("127.0.0.1", port, 1.0)  # why a bare connect is not enough
        assert not await probe.answers("ssh", "127.0.0.1", port, 1.0)
        assert not await probe.answers("http", "127.0.0.1", port, 1.0)


async def test_an_ssh_banner_and_an_http_answer_are_ready() -> None:
    async def sshd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2 Debian\r\n")
        await writer.drain()
        writer.close()

    async def httpd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nhello")
        await writer.drain()
        writer.close()

    async with serving(sshd) as ssh_port, serving(httpd) as http_port:
        assert await probe.ssh_banner("127.0.0.1", ssh_port, 1.0) == "SSH-2.0-OpenSSH_9.2 Debian"
        assert await probe.answers("http", "127.0.0.1", http_port, 1.0)
        assert not await probe.answers("ssh", "127.0.0.1", http_port, 1.0)  # an answer, but not a banner


def test_the_kvm_probe_firmware_reaches_long_mode_under_emulation() -> None:
    """The firmware the KVM check boots is sound: under TCG it reports from long mode, so a KVM that fails
    to run it is at fault, not the probe."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs qemu-system-x86_64 (Debian: qemu-system-x86)")
    firmware = os.memfd_create("probe-test")
    try:
        os.write(firmware, accel._firmware())
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "16", "-bios", f"/dev/fd/{firmware}"]
        argv += ["-device", "isa-debug-exit,iobase=0xf4,iosize=1", "-display", "none", "-nodefaults"]
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False, pass_fds=(firmware,))
    finally:
        os.close(firmware)
    assert done.returncode == accel.PROBE_EXIT_STATUS, done.stderr

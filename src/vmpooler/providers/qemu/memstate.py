"""Saved memory states: a pool's template booted once, paused, its RAM and device state saved and its disk frozen.

Layout: ``<state_dir>/.memstate/<pool>/<fingerprint>/`` holds ``template.qcow2`` (the template VM's disk
overlay at the instant it was paused, read-only from then on: every clone's overlay is backed by it),
``memory.state`` (QEMU's migration stream of RAM and devices) and ``complete`` (written last). The
fingerprint covers the template image, the kernel and initrd (path, size, mtime) and the machine's
shape, so a changed template gets a new state. One builder at a time per pool (a lock file); a state
that was never completed (a crash) is removed and built again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import shlex
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from vmpooler.errors import PermanentProviderError, ProviderError, ProviderTimeout
from vmpooler.providers.localvm import images, network, probe
from vmpooler.providers.localvm.accel import Accelerator
from vmpooler.providers.localvm.options import Machine
from vmpooler.providers.localvm.ports import PortAllocator
from vmpooler.providers.localvm.records import VMFiles, VMRecord
from vmpooler.providers.qemu import process, qmp, thaw
from vmpooler.providers.qemu.argv import Host, command_line

LOCK_POLL_SECONDS = 0.2
#: longer than the test guest agent's 0.2 s poll of its port, under TCG on a loaded host
AGENT_SETTLE_SECONDS = 1.0
#: bytes per second the state is written at: as fast as the disk takes it (QEMU's default is 32 MiB/s)
SAVE_BANDWIDTH = 1 << 40


@dataclass(frozen=True)
class SavedState:
    """One pool's saved template: clones start from ``memory`` with an overlay over ``disk``."""

    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "template.qcow2"

    @property
    def memory(self) -> Path:
        return self.directory / "memory.state"

    @property
    def complete(self) -> Path:
        return self.directory / "complete"

    def incoming(self) -> str:
        """The ``-incoming`` of a clone: QEMU reads the stream from a ``cat`` it runs (7.2 has no ``file:``)."""
        return f"exec:cat {shlex.quote(str(self.memory))}"


@dataclass(frozen=True)
class Builder:
    """What building a state needs from the provider."""

    host: Host
    qemu_img: str
    ports: PortAllocator
    probe_address: str
    probe_timeout: float
    launch_timeout: float
    boot_timeout: float
    shutdown_grace: float


def fingerprint(template: Path, machine: Machine, host: Host, chosen: Accelerator) -> str:
    """Changes when the template, kernel or initrd file changes, or anything that shapes the machine."""
    parts: dict[str, object] = {"machine": dataclasses.asdict(machine), "host": dataclasses.asdict(host)}
    parts["accel"] = chosen
    for what, path in (("template", template), ("kernel", machine.kernel), ("initrd", machine.initrd)):
        if path is not None:
            found = path.stat()
            parts[what] = [str(path.absolute()), found.st_size, found.st_mtime_ns]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


async def ensure(
    root: Path, pool: str, template: Path, machine: Machine, chosen: Accelerator, builder: Builder
) -> SavedState:
    """The pool's saved state for this template and machine, built first when there is none."""
    if machine.network != "user":
        raise PermanentProviderError("clone_from: memory needs network: user (a bridged clone would keep its address)")
    digest = await asyncio.to_thread(fingerprint, template, machine, builder.host, chosen)
    state = SavedState(root / pool / digest)
    if state.complete.exists():
        return state
    async with _locked(root / pool / ".lock"):
        if state.complete.exists():  # built by another builder while we waited
            return state
        await asyncio.to_thread(_fresh_directory, state.directory)
        await _build(state, template, machine, chosen, builder)
        await asyncio.to_thread(_remove_others, state.directory)
    return state


async def _build(state: SavedState, template: Path, machine: Machine, chosen: Accelerator, builder: Builder) -> None:
    """Boot the template, wait until it answers, pause it, save RAM and devices, and freeze its disk."""
    files = VMFiles(state.directory, "template")
    uid = str(uuid.uuid4())
    record = VMRecord(
        pool=state.directory.parent.name,
        name="template",
        uid=uid,
        template=str(template),
        created=time.time(),
        mac=network.mac_for(uid),
        network=machine.network,
    )
    await images.create_overlay(builder.qemu_img, template, files.overlay)
    record.port = await asyncio.to_thread(builder.ports.allocate, files.metadata)
    try:
        argv = command_line(builder.host, machine, record, files, chosen, devices=thaw.devices(files))
        record.argv = argv
        # a metadata file as any VM has, so that whatever kills a state directory's VMs finds this one too
        await asyncio.to_thread(files.metadata.write_text, record.model_dump_json(indent=1))
        pid = await process.launch(argv, files, builder.launch_timeout)
        try:
            await _wait_reachable(machine, builder, record.port)
            await _save(files, state.memory, builder.launch_timeout)
        finally:
            if process.is_ours(pid, uid):
                await process.stop(pid, uid, files, builder.shutdown_grace)
    finally:
        await asyncio.to_thread(builder.ports.release, record.port, files.metadata)
    await asyncio.to_thread(_freeze, state, files)


async def _wait_reachable(machine: Machine, builder: Builder, port: int) -> None:
    deadline = time.monotonic() + builder.boot_timeout
    while not await probe.answers(machine.ready_probe, builder.probe_address, port, builder.probe_timeout):
        if time.monotonic() >= deadline:
            raise ProviderTimeout(f"the template did not answer within {builder.boot_timeout:.0f}s")
        await asyncio.sleep(0.5)


async def _save(files: VMFiles, memory: Path, builder_timeout: float) -> None:
    """Pause the guest, then stream its RAM and devices to ``memory``; its disk is flushed with them. The agent
    port is connected meanwhile (``thaw.channel``), so a clone's agent is already waiting for its thaw line."""
    async with thaw.channel(files, builder_timeout) as _agent, qmp.session(files.qmp) as monitor:
        await asyncio.sleep(AGENT_SETTLE_SECONDS)  # the agent sees the host within its poll and blocks reading
        await monitor.execute("stop")
        await monitor.execute("migrate-set-parameters", {"max-bandwidth": SAVE_BANDWIDTH})
        await monitor.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(memory))}"})
        while True:
            migration = await monitor.execute("query-migrate")
            status = migration.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                raise ProviderError(f"saving the template's memory failed: {migration.get('error-desc', status)}")
            await asyncio.sleep(0.1)


def _freeze(state: SavedState, files: VMFiles) -> None:
    """Keep the disk and the memory read-only (every clone reads them) and drop the template's other files."""
    for path in (state.disk, state.memory):
        path.chmod(0o444)
    for path in (files.pidfile, files.qmp, files.agent, files.metadata):
        path.unlink(missing_ok=True)
    state.complete.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def _fresh_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def _remove_others(keep: Path) -> None:
    """Remove the pool's older states; running clones keep theirs open, and a destroy needs none of it."""
    for other in keep.parent.iterdir():
        if other.is_dir() and other != keep:
            shutil.rmtree(other, ignore_errors=True)


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """One builder per pool across processes; polled so that a cancelled waiter leaves no blocked thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

"""The qemu provider: real VMs as ``qemu-system-x86_64`` processes on this host, with no daemon in between.

A pool's ``template`` is a qcow2 base image. Each VM boots from its own copy-on-write overlay in
``<state_dir>/<pool>/``; its process is a daemon that outlives a crashed or restarted manager, and
is found again from the VM's metadata and pid file. Everything a VM owns lives under the state
directory, so the inventory is the metadata files there (see ``localvm.records``).
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.base import ProviderOptions
from vmpooler.providers.localvm import accel, images, network, probe
from vmpooler.providers.localvm.commands import require_binary
from vmpooler.providers.localvm.options import LocalVMOptions, Machine, MachineOptions, machine_for
from vmpooler.providers.localvm.ports import PortAllocator
from vmpooler.providers.localvm.provider import LocalVMProvider
from vmpooler.providers.localvm.records import RecordStore, VMFiles, VMRecord
from vmpooler.providers.qemu import memstate, process, qmp, suspend, thaw
from vmpooler.providers.qemu.argv import Host, command_line

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: launches tried, each with another forwarded port, when the port was taken after its bind test
PORT_ATTEMPTS = 3
#: savevm/loadvm copy the whole guest memory; under TCG on a busy host that takes a while
SNAPSHOT_TIMEOUT = 300.0

CloneFrom = Literal["boot", "memory"]


class QemuPoolOptions(MachineOptions):
    """A pool's own keys: the shared machine keys, and how its VMs start."""

    #: this pool's ``clone_from`` (``boot`` or ``memory``), over the provider's
    clone_from: CloneFrom | None = None


class QemuOptions(LocalVMOptions):
    """``:providers: :qemu:`` keys: the shared local-VM keys plus how to run QEMU itself."""

    #: the QEMU system emulator to run
    qemu_binary: str = "qemu-system-x86_64"
    #: the ``-machine`` type (``pc`` supports the PCI hot-plug that adding a disk uses)
    machine_type: str = "pc"
    #: seconds a VM gets to quit after QMP ``quit``, and again after SIGTERM
    shutdown_grace: float = Field(10.0, gt=0)
    #: seconds QEMU may take to set a VM up before it daemonizes
    launch_timeout: float = Field(60.0, gt=0)
    #: appended to every VM's command line as they are (e.g. ``[-device, virtio-rng-pci]``)
    extra_args: list[str] = Field(default_factory=list)
    #: ``boot``: each VM boots its template; ``memory``: the template is booted once and its RAM saved, and each
    #: VM is restored from that state with a disk overlay of its own (docs/fast-clones.md; a pool may set it)
    clone_from: CloneFrom = "boot"
    #: seconds the template of a ``clone_from: memory`` pool may take to answer its probe before it is saved
    template_boot_timeout: float = Field(300.0, gt=0)


class QemuProvider(LocalVMProvider):
    """Runs each VM as its own QEMU process; see the module docstring."""

    options_model = QemuOptions
    pool_options_model = QemuPoolOptions
    options: QemuOptions

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        options = self.options
        self._records = RecordStore(self.state_dir)
        # a leading dot: no pool can have that name
        self._ports = PortAllocator(self.state_dir / ".ports", *options.port_range, address=options.listen_address)
        self._memstates = self.state_dir / ".memstate"
        self._builds: dict[tuple[str, Path, Machine, str], asyncio.Future[memstate.SavedState]] = {}
        self._host = Host(options.qemu_binary, options.machine_type, options.listen_address, tuple(options.extra_args))

    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        # every metadata file counts, whether its process runs or not: a half-made or crashed VM is
        # listed so that the manager destroys it, and nothing is left behind
        return await asyncio.to_thread(self._records.names, pool.name)

    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        found = await self._load(pool, name)
        if found is None:
            return None
        files, record = found
        pid = process.find(files, record.uid, record.pid)
        return VMInfo(
            name=name,
            pool=pool.name,
            template=record.template,
            hostname=name,
            ip=await self._address(record),
            powered_on=pid is not None,
            boot_time=record.started,
            host=socket.gethostname(),
            extra={
                "pid": pid,
                "port": record.port,
                "accel": record.accel,
                "network": record.network,
                "overlay": str(files.overlay),
                "disks": list(record.disks),
                "console_log": str(files.serial),
                "qmp_socket": str(files.qmp),
            },
        )

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        with self._about(pool, name):
            binary = require_binary(self.options.qemu_binary)
            machine, qemu_img, template = await self._clone_inputs(pool)
            files = self._records.files(pool.name, name)
            restoring = self._clone_from(pool) == "memory"
            uid = str(uuid.uuid4())
            record = VMRecord(
                pool=pool.name,
                name=name,
                uid=uid,
                template=str(template),
                created=time.time(),
                mac=network.mac_for(uid),
                network=machine.network,
            )
            # the metadata comes first and goes last: a crash anywhere in between leaves a listed VM
            await asyncio.to_thread(self._records.create, files, record)
            chosen = await accel.choose(self.options.accel, binary)
            record.accel = chosen
            if restoring:
                await self._restore(pool, machine, record, files, template, chosen)
            else:
                await images.create_overlay(qemu_img, template, files.overlay)
                await self._launch(machine, record, files, chosen)
        info = await self.get_vm(pool, name)
        if info is None:
            raise ProviderError(f"{self.name}: pool {pool.name!r} VM {name!r} vanished while it was created")
        return info

    def _clone_from(self, pool: PoolTarget) -> CloneFrom:
        own = pool.provider_options.get("clone_from")
        return own if own in ("boot", "memory") else self.options.clone_from

    async def _restore(
        self,
        pool: PoolTarget,
        machine: Machine,
        record: VMRecord,
        files: VMFiles,
        template: Path,
        chosen: accel.Accelerator,
    ) -> None:
        """Start the VM from the pool's saved memory state (built first if needed), then give it its own identity."""
        state = await self._saved_state(pool, template, machine, chosen)
        await images.create_overlay(require_binary(self.options.qemu_img), state.disk, files.overlay)
        await self._launch(machine, record, files, chosen, thaw.devices(files), state.incoming())
        timeout = self.options.launch_timeout
        async with thaw.channel(files, timeout) as agent:
            await agent.send_thaw(record.name, record.mac)  # read by the guest as soon as it runs
            await thaw.wait_running(files, timeout)
            await agent.answer(timeout)

    async def _saved_state(
        self, pool: PoolTarget, template: Path, machine: Machine, chosen: accel.Accelerator
    ) -> memstate.SavedState:
        """The pool's saved state. A build runs as a task of its own that every concurrent clone awaits: a clone
        cancelled by its time limit leaves the build running, so a template slower to boot than one clone's
        limit is still saved once, for the clones after it."""
        key = (pool.name, template, machine, chosen)
        build = self._builds.get(key)
        if build is None:
            build = asyncio.ensure_future(
                memstate.ensure(self._memstates, pool.name, template, machine, chosen, self._builder())
            )
            self._builds[key] = build
            build.add_done_callback(functools.partial(_finished, self._builds, key))
        return await asyncio.shield(build)

    def _builder(self) -> memstate.Builder:
        options = self.options
        return memstate.Builder(
            host=self._host,
            qemu_img=require_binary(options.qemu_img),
            ports=self._ports,
            probe_address=self._local_address,
            probe_timeout=options.probe_timeout,
            launch_timeout=options.launch_timeout,
            boot_timeout=options.template_boot_timeout,
            shutdown_grace=options.shutdown_grace,
        )

    async def _launch(
        self,
        machine: Machine,
        record: VMRecord,
        files: VMFiles,
        chosen: accel.Accelerator,
        devices: tuple[str, ...] = (),
        incoming: str | None = None,
    ) -> None:
        """Start QEMU with a forwarded port of its own, taking another when the first is lost in a race."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if machine.network == "user":
                record.port = await asyncio.to_thread(self._ports.allocate, files.metadata)
            record.argv = command_line(self._host, machine, record, files, chosen, devices, incoming)
            await asyncio.to_thread(self._records.save, files, record)
            try:
                record.pid = await process.launch(record.argv, files, self.options.launch_timeout)
                break
            except PermanentProviderError as exc:
                # another state directory's manager, or any program, may have bound the port since it was tested
                if record.port is None or "host forwarding rule" not in str(exc) or attempt == PORT_ATTEMPTS:
                    raise
                await asyncio.to_thread(self._ports.release, record.port, files.metadata)
        record.started = time.time()
        await asyncio.to_thread(self._records.save, files, record)

    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        with self._about(pool, name):
            try:
                files = self._records.files(pool.name, name)
            except PermanentProviderError:
                return  # no VM can have a name that is not a file name
            record = await asyncio.to_thread(self._records.load, files)
            if record is not None:
                pid = process.find(files, record.uid, record.pid)
                if pid is not None:
                    await process.stop(pid, record.uid, files, self.options.shutdown_grace)
                if record.port is not None:
                    await asyncio.to_thread(self._ports.release, record.port, files.metadata)
            await asyncio.to_thread(self._records.remove, files, record)

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        found = await self._load(pool, name)
        if found is None:
            return False
        files, record = found
        if process.find(files, record.uid, record.pid) is None:
            return False
        machine = machine_for(self.options, pool.name, pool.provider_options)
        host: str | None = self._local_address
        port = record.port
        if record.network != "user":
            host, port = await asyncio.to_thread(network.address_of, record.mac), machine.guest_port
        if host is None or port is None:
            return False
        return await probe.answers(machine.ready_probe, host, port, self.options.probe_timeout)

    async def suspend_vm(self, pool: PoolTarget, name: str) -> None:
        """RAM and devices to ``<name>.suspended``, then the process ends: no CPU, no memory. Its port stays its own."""
        with self._about(pool, name):
            files, record = await self._existing(pool, name)
            pid = process.find(files, record.uid, record.pid)
            if pid is None:
                if files.suspended.exists():
                    return  # already suspended
                raise ProviderError("the VM is not running")
            await suspend.save(files, self.options.launch_timeout)
            await process.stop(pid, record.uid, files, self.options.shutdown_grace)
            record.pid = None
            await asyncio.to_thread(self._records.save, files, record)

    async def resume_vm(self, pool: PoolTarget, name: str) -> None:
        """The same command line again, from the saved state: the same machine, address and identity."""
        with self._about(pool, name):
            files, record = await self._existing(pool, name)
            if process.find(files, record.uid, record.pid) is None:
                if not files.suspended.exists():
                    raise PermanentProviderError("the VM is neither running nor suspended")
                record.pid = await process.launch(
                    suspend.resume_argv(record.argv, files), files, self.options.launch_timeout
                )
                await asyncio.to_thread(self._records.save, files, record)
            # paused when it was saved: resumed here once its state is loaded
            await thaw.wait_running(files, self.options.launch_timeout)
            await asyncio.to_thread(files.suspended.unlink, missing_ok=True)

    async def get_vm_ip_address(self, pool: PoolTarget, name: str) -> str | None:
        found = await self._load(pool, name)
        return await self._address(found[1]) if found else None

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        """A live internal snapshot: memory and device state in the overlay, every disk's blocks in itself."""
        with self._about(pool, name):
            files, _ = await self._snapshot_target(pool, name, snapshot)
            async with qmp.session(files.qmp) as monitor:
                await _human_command(monitor, f"savevm {snapshot}")

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        with self._about(pool, name):
            files, record = await self._snapshot_target(pool, name, snapshot)
            # a failed loadvm leaves the VM paused, so a snapshot some disk lacks is refused first
            qemu_img = require_binary(self.options.qemu_img)
            for image in (files.overlay, *map(Path, record.disks)):
                if snapshot not in await images.snapshots(qemu_img, image):
                    raise PermanentProviderError(f"no snapshot {snapshot!r} in {image.name}")
            async with qmp.session(files.qmp) as monitor:
                was_running = (await monitor.execute("query-status")).get("running", False)
                try:
                    await _human_command(monitor, f"loadvm {snapshot}")
                finally:
                    if was_running and not (await monitor.execute("query-status")).get("running", False):
                        await monitor.execute("cont")

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        with self._about(pool, name):
            files, record = await self._running(pool, name)
            number = len(record.disks) + 1
            disk = files.disk(number)
            record.disks.append(str(disk))  # recorded before it exists, so a destroy always finds it
            await asyncio.to_thread(self._records.save, files, record)
            await images.create_blank(require_binary(self.options.qemu_img), disk, size_gb)
            node = {"driver": "qcow2", "node-name": f"disk{number}", "file": {"driver": "file", "filename": str(disk)}}
            async with qmp.session(files.qmp) as monitor:
                await monitor.execute("blockdev-add", node)
                device = {"driver": "virtio-blk-pci", "drive": f"disk{number}", "id": f"disk{number}"}
                await monitor.execute("device_add", device)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "state_dir": str(self.state_dir), "accel": self.options.accel}

    async def _snapshot_target(self, pool: PoolTarget, name: str, snapshot: str) -> tuple[VMFiles, VMRecord]:
        if not SNAPSHOT_NAME.fullmatch(snapshot):
            raise PermanentProviderError(f"snapshot name {snapshot!r} must match {SNAPSHOT_NAME.pattern}")
        return await self._running(pool, name)

    async def _load(self, pool: PoolTarget, name: str) -> tuple[VMFiles, VMRecord] | None:
        try:
            files = self._records.files(pool.name, name)
        except PermanentProviderError:
            return None
        record = await asyncio.to_thread(self._records.load, files)
        return (files, record) if record is not None else None

    async def _existing(self, pool: PoolTarget, name: str) -> tuple[VMFiles, VMRecord]:
        found = await self._load(pool, name)
        if found is None:
            raise PermanentProviderError("no such VM")
        return found

    async def _running(self, pool: PoolTarget, name: str) -> tuple[VMFiles, VMRecord]:
        files, record = await self._existing(pool, name)
        if process.find(files, record.uid, record.pid) is None:
            raise ProviderError("the VM is not running")
        return files, record

    async def _address(self, record: VMRecord) -> str | None:
        """How a user reaches the VM: the forwarded host port, or the bridged guest's own address."""
        if record.network == "user":
            if record.port is None:
                return None
            return f"{self.options.advertise_host or self._local_address}:{record.port}"
        return await asyncio.to_thread(network.address_of, record.mac)


async def _human_command(monitor: qmp.QMPClient, command: str) -> None:
    """Run a human-monitor command, which reports failure only as text (success is silent)."""
    said = await monitor.execute("human-monitor-command", {"command-line": command}, timeout=SNAPSHOT_TIMEOUT)
    if isinstance(said, str) and "Error" in said:
        raise ProviderError(f"{command}: {said.strip()}")


def _finished(builds: dict[Any, Any], key: object, done: asyncio.Future[memstate.SavedState]) -> None:
    """Forget a finished build (the next clone checks the saved files), and mark its error as seen: the clones
    that awaited it have reported it, or were cancelled."""
    builds.pop(key, None)
    if not done.cancelled():
        done.exception()

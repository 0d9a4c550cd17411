"""The libvirt provider: pools of VMs as persistent libvirt domains on a host that shares the state directory.

A pool's ``template`` is a qcow2 base image. Each VM is a copy-on-write overlay in its own directory
under ``state_dir`` (see ``layout``) and a domain named after it whose metadata names its pool
(see ``domain_xml``). The domains are the inventory: they outlive the manager, so a new provider
instance finds them again through libvirt. Everything blocking goes through ``Connection``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.base import ProviderOptions
from vmpooler.providers.libvirt import domains
from vmpooler.providers.libvirt.connection import Connection
from vmpooler.providers.libvirt.domain_xml import (
    DomainFacts,
    DomainSpec,
    DomainType,
    disk_xml,
    domain_xml,
    next_target,
    snapshot_xml,
)
from vmpooler.providers.libvirt.layout import Layout, VMDir
from vmpooler.providers.libvirt.options import LibvirtOptions
from vmpooler.providers.localvm import accel, images, network, probe
from vmpooler.providers.localvm.commands import require_binary
from vmpooler.providers.localvm.options import machine_for
from vmpooler.providers.localvm.ports import PortAllocator
from vmpooler.providers.localvm.provider import LocalVMProvider

SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_EMULATOR = "qemu-system-x86_64"


class LibvirtProvider(LocalVMProvider):
    """Runs each VM as a libvirt domain; see the module docstring."""

    options_model = LibvirtOptions
    options: LibvirtOptions

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        options = self.options
        self._layout = Layout(self.state_dir)
        self._ports = PortAllocator(self.state_dir / "ports", *options.port_range, address=self._local_address)
        self._libvirt = Connection(options.uri, options.connect_timeout, options.call_timeout)
        #: the domain types the daemon has said it can run with ``machine_type``
        self._machines_checked: set[DomainType] = set()
        self._hypervisor_host = urlsplit(options.uri).hostname or socket.gethostname()

    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        defined = await self._libvirt.run(partial(domains.pool_domains, pool=pool.name), f"listing pool {pool.name!r}")
        # a directory without a domain is a clone cut short: listed, so that the manager destroys it
        unfinished = await asyncio.to_thread(self._layout.names, pool.name)
        return sorted(set(defined) | set(unfinished))

    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        with self._about(pool, name):
            try:
                vm = self._layout.vm(pool.name, name)
            except PermanentProviderError:
                return None  # no VM can have a name that is not a file name
            facts = await self._facts(name)
            if facts is not None and facts.pool == pool.name:
                return await self._info(facts, vm)
            if await asyncio.to_thread(vm.path.is_dir):
                return VMInfo(name=name, pool=pool.name, hostname=name, powered_on=False, extra={"domain": None})
            return None

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        with self._about(pool, name):
            machine, qemu_img, template = await self._clone_inputs(pool)
            domain_type = await self._domain_type()
            await self._check_machine(domain_type)
            vm = self._layout.vm(pool.name, name)
            # the directory is the claim on the name; from here on, whatever fails leaves a VM that
            # is listed and that destroy_vm removes
            await asyncio.to_thread(self._layout.claim, vm)
            port = None
            if machine.network == "user":
                port = await asyncio.to_thread(self._ports.allocate, vm.path)
            await images.create_overlay(qemu_img, template, vm.overlay)
            vm_uuid = str(uuid.uuid4())
            spec = DomainSpec(
                name=name,
                uuid=vm_uuid,
                pool=pool.name,
                template=template,
                overlay=vm.overlay,
                console=vm.console,
                machine=machine,
                domain_type=domain_type,
                machine_type=self.options.machine_type,
                mac=network.mac_for(vm_uuid),
                created=time.time(),
                port=port,
                listen_address=self.options.listen_address,
                emulator=self.options.emulator,
            )
            await self._libvirt.run(partial(domains.define, xml=domain_xml(spec)), "defining the domain")
            await self._libvirt.run(partial(domains.start, name=name), "starting the domain", permanent_by_default=True)
            facts = await self._facts(name)
            if facts is None:
                raise ProviderError("the domain vanished as it was started")
            return await self._info(facts, vm)

    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        with self._about(pool, name):
            try:
                vm = self._layout.vm(pool.name, name)
            except PermanentProviderError:
                return
            facts = await self._facts(name)
            if facts is not None and facts.pool == pool.name:  # never another pool's domain, nor a stranger's
                await self._libvirt.run(partial(domains.remove, uuid=facts.uuid), "removing the domain")
            await asyncio.to_thread(self._layout.remove, vm)
            if facts is not None and facts.pool == pool.name and facts.port is not None:
                await asyncio.to_thread(self._ports.release, facts.port, vm.path)

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        with self._about(pool, name):
            facts = await self._pool_facts(pool, name)
            if facts is None or not facts.active:
                return False
            machine = machine_for(self.options, pool.name, pool.provider_options)
            host: str | None = self._local_address
            port = facts.port
            if facts.network != "user":
                host, port = await self._bridged_address(facts), machine.guest_port
            if host is None or port is None:
                return False
            return await probe.answers(machine.ready_probe, host, port, self.options.probe_timeout)

    async def get_vm_ip_address(self, pool: PoolTarget, name: str) -> str | None:
        with self._about(pool, name):
            facts = await self._pool_facts(pool, name)
            return await self._address(facts) if facts else None

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        """A snapshot of the running guest, memory included, kept inside its qcow2 images."""
        with self._about(pool, name):
            await self._snapshot_target(pool, name, snapshot)
            work = partial(domains.snapshot, name=name, xml=snapshot_xml(snapshot))
            doing = f"taking snapshot {snapshot!r}"
            await self._libvirt.run(work, doing, timeout=self.options.snapshot_timeout, repeatable=False)

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        with self._about(pool, name):
            await self._snapshot_target(pool, name, snapshot)
            work = partial(domains.revert, name=name, snapshot_name=snapshot)
            doing = f"reverting to snapshot {snapshot!r}"
            await self._libvirt.run(work, doing, timeout=self.options.snapshot_timeout)

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        """A new blank qcow2 of ``size_gb`` GiB in the VM's directory, plugged into the guest and its definition."""
        with self._about(pool, name):
            facts = await self._pool_facts(pool, name)
            if facts is None:
                raise PermanentProviderError("no such VM")
            vm = self._layout.vm(pool.name, name)
            image = await asyncio.to_thread(vm.next_disk)
            await images.create_blank(require_binary(self.options.qemu_img), image, size_gb)
            target = next_target(set(facts.disks))
            work = partial(domains.attach_disk, name=name, xml=disk_xml(image, target))
            await self._libvirt.run(work, f"attaching {image.name} as {target}", repeatable=False)

    async def close(self) -> None:
        await self._libvirt.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uri": self.options.uri, "state_dir": str(self.state_dir)}

    async def _facts(self, name: str) -> DomainFacts | None:
        return await self._libvirt.run(partial(domains.facts, name=name), "reading the domain")

    async def _pool_facts(self, pool: PoolTarget, name: str) -> DomainFacts | None:
        facts = await self._facts(name)
        return facts if facts is not None and facts.pool == pool.name else None

    async def _snapshot_target(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        if not SNAPSHOT_NAME.fullmatch(snapshot):
            raise PermanentProviderError(f"snapshot name {snapshot!r} must match {SNAPSHOT_NAME.pattern}")
        if await self._pool_facts(pool, name) is None:
            raise PermanentProviderError("no such VM")

    async def _domain_type(self) -> DomainType:
        """``kvm`` or ``qemu`` (TCG): on this host as ``localvm.accel`` finds it, on a remote one as libvirt says."""
        requested = self.options.accel
        if requested != "auto" or self.options.is_local():
            chosen = await accel.choose(requested, self.options.emulator or DEFAULT_EMULATOR)
            return "kvm" if chosen == "kvm" else "qemu"
        offers_kvm = await self._libvirt.run(domains.offers_kvm, "reading the host's capabilities")
        return "kvm" if offers_kvm else "qemu"

    async def _check_machine(self, domain_type: DomainType) -> None:
        if domain_type in self._machines_checked:
            return
        options = self.options
        work = partial(
            domains.check_machine,
            emulator=options.emulator,
            machine_type=options.machine_type,
            domain_type=domain_type,
        )
        await self._libvirt.run(work, f"checking machine type {options.machine_type!r} ({domain_type})")
        self._machines_checked.add(domain_type)

    async def _info(self, facts: DomainFacts, vm: VMDir) -> VMInfo:
        return VMInfo(
            name=facts.name,
            pool=facts.pool,
            template=facts.template,
            hostname=facts.name,
            ip=await self._address(facts),
            powered_on=facts.active,
            boot_time=facts.created,
            host=self._hypervisor_host,
            extra={
                "domain": facts.name,
                "uuid": facts.uuid,
                "domain_type": facts.domain_type,
                "network": facts.network,
                "port": facts.port,
                "mac": facts.mac,
                "overlay": str(vm.overlay),
                "disks": facts.disks,
                "console_log": facts.console,
            },
        )

    async def _address(self, facts: DomainFacts) -> str | None:
        """How a user reaches the VM: the forwarded host port, or the bridged guest's own address."""
        if facts.network == "user":
            if facts.port is None:
                return None
            return f"{self.options.advertise_host or self._local_address}:{facts.port}"
        return await self._bridged_address(facts)

    async def _bridged_address(self, facts: DomainFacts) -> str | None:
        if facts.mac is None or not facts.active:
            return None
        work = partial(domains.address_of, name=facts.name, mac=facts.mac)
        return await self._libvirt.run(work, "reading the guest's address")

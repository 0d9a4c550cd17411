"""The vSphere provider: clones pools' VMs from templates in vCenter, through pyVmomi.

Each call resolves the pool's configuration against the inventory afresh (managed object references
are not cached: a folder recreated by an operator must not be looked for where the old one was).
Blocking pyVmomi work runs on the session pool's threads in short steps; waiting for a vCenter task
is an async poll between steps, so no thread or session is held while vCenter works.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from pyVmomi import vim, vmodl

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.base import Provider, ProviderOptions
from vmpooler.providers.localvm.probe import tcp_open
from vmpooler.providers.vsphere import purge, resolve
from vmpooler.providers.vsphere.connection import Content, SessionPool
from vmpooler.providers.vsphere.inventory import ComputeTarget, Datacenter, Props, retrieve, snapshot_tree
from vmpooler.providers.vsphere.options import (
    LINKED_CLONE_SNAPSHOT,
    VSPHERE_GLOBAL_KEYS,
    VSphereOptions,
    VSpherePoolOptions,
    pool_options,
)
from vmpooler.providers.vsphere.placement import HostLoad, host_loads, least_used
from vmpooler.providers.vsphere.specs import (
    USER_KEY,
    ClonePlacement,
    add_disk_spec,
    clone_spec,
    datastore_of,
    delta_disk_spec,
    mark_spec,
    vmx_options,
)
from vmpooler.providers.vsphere.tasks import wait_for_task
from vmpooler.providers.vsphere.vminfo import INFO_PATHS, POWERED_ON, host_name, vm_info

__all__ = ["VSphereProvider"]

log = logging.getLogger(__name__)


class VSphereProvider(Provider):
    """VMs cloned from a template in vCenter; see the module docstring and docs/providers/vsphere.md."""

    options_model = VSphereOptions
    pool_options_model = VSpherePoolOptions
    global_keys = VSPHERE_GLOBAL_KEYS

    @classmethod
    def template_problem(cls, options: ProviderOptions, pool: PoolTarget, template: str) -> str | None:
        # an inventory path, as the original insists: a folder, then the template's name
        if "/" not in template or template.startswith("/") or template.endswith("/"):
            return "a vSphere template must be of the form folder/name"
        return None

    options: VSphereOptions

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        options = self.options
        self._sessions = SessionPool(name, options)
        self._in_flight: Counter[str] = Counter()  # host name -> clones this provider is making there
        self._base_snapshot_lock: asyncio.Lock | None = None
        # cluster name -> (when read, its hosts' loads); read and written from the session threads
        self._loads: dict[str, tuple[float, list[HostLoad]]] = {}
        self._loads_lock = threading.Lock()

    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        cfg = pool_options(pool)
        found = await self._sessions.run(
            lambda content: resolve.pool_vms(content, pool, cfg, self.options.datacenter, ["name"]),
            f"listing the VMs of pool {pool.name!r}",
        )
        return sorted(vm["name"] for vm in found)

    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        cfg = pool_options(pool)

        def look(content: Content) -> tuple[Props, str | None] | None:
            found = self._marked(content, pool, cfg, name, INFO_PATHS)
            return None if found is None else (found, host_name(content, found))

        described = await self._sessions.run(look, f"looking up VM {name!r} of pool {pool.name!r}")
        return None if described is None else vm_info(pool, *described)

    async def get_vm_ip_address(self, pool: PoolTarget, name: str) -> str | None:
        found = await self._find(pool, name, ["guest.ipAddress"])
        return found.get("guest.ipAddress") if found else None

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        cfg = pool_options(pool)
        options = self.options
        doing = f"cloning {name!r} for pool {pool.name!r}"

        def find_source(content: Content) -> tuple[Datacenter, resolve.CloneSource, list[Any]]:
            dc = resolve.datacenter(content, pool, cfg, options.datacenter)
            source = resolve.clone_source(content, pool, dc)
            nic = [resolve.network_change(content, pool, dc, source, cfg.network)] if cfg.network else []
            return dc, source, nic

        dc, source, nic = await self._sessions.run(find_source, doing)
        linked = options.create_linked_clones if cfg.create_linked_clone is None else cfg.create_linked_clone
        to_delta_disks = linked and source.snapshot is None and options.create_template_delta_disks
        if to_delta_disks:
            source = await self._add_delta_disks(pool, dc)
        elif linked and source.snapshot is None:
            source = await self._take_base_snapshot(pool, dc)
        loads = self._host_loads if options.manage_host_selection else None
        target = await self._sessions.run(
            lambda c: resolve.clone_target(
                c, pool, cfg, dc, source, name, create_folder=options.create_folders, loads=loads
            ),
            doing,
        )
        host = self._choose_host(pool, cfg, target)
        placement = ClonePlacement(target.folder, target.resource_pool, host.ref if host else None, target.datastore)
        spec = clone_spec(
            pool=pool.name,
            name=name,
            template=pool.template,
            created_by=options.username,
            placement=placement,
            snapshot=source.snapshot if linked and not to_delta_disks else None,
            vmx_options=vmx_options(cfg),
            linked_to_delta_disks=to_delta_disks,
            device_changes=nic,
        )
        how = " (full clone)"
        if to_delta_disks:
            how = " (linked to the template's delta disks)"
        elif linked:
            how = f" (linked to snapshot {source.snapshot_name!r})"
        log.info(
            "vSphere: cloning %s for pool %s from %s%s onto host %s, datastore %s%s",
            name,
            pool.name,
            pool.template,
            how,
            host.name if host else "chosen by vCenter",
            cfg.datastore or "the template's",
            f", network {cfg.network}" if cfg.network else "",
        )
        with self._cloning_on(host):
            task = await self._sessions.run(lambda _: source.vm.Clone(target.folder, name, spec), doing)
            vm: vim.VirtualMachine = await wait_for_task(self._sessions, task, doing, self.options.task_timeout)
        # powered on apart from the clone: a clone that cannot start is left for the manager to destroy
        powering = f"powering on {name!r} of pool {pool.name!r}"
        task = await self._sessions.run(lambda _: vm.PowerOn(None), powering)
        await wait_for_task(self._sessions, task, powering, self.options.task_timeout, (vim.fault.InvalidPowerState,))

        def describe(content: Content) -> tuple[Props, str | None]:
            found = retrieve(content, [vm], vim.VirtualMachine, INFO_PATHS)[0]
            return found, host_name(content, found)

        return vm_info(pool, *await self._sessions.run(describe, f"reading the new VM {name!r}"))

    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        doing = f"destroying {name!r} of pool {pool.name!r}"
        found = await self._find(pool, name, ["runtime.powerState"])
        if found is None:
            return
        vm: vim.VirtualMachine = found["obj"]
        if found.get("runtime.powerState") == POWERED_ON:
            task = await self._gone_or(vm.PowerOff, doing)
            if task is None:
                return
            await wait_for_task(self._sessions, task, doing, self.options.task_timeout, (vim.fault.InvalidPowerState,))
        task = await self._gone_or(vm.Destroy, doing)
        if task is not None:
            await wait_for_task(
                self._sessions, task, doing, self.options.task_timeout, (vmodl.fault.ManagedObjectNotFound,)
            )

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        found = await self._find(pool, name, ["runtime.powerState", "guest.ipAddress", "guest.hostName"])
        if found is None or found.get("runtime.powerState") != POWERED_ON:
            return False
        address, hostname = found.get("guest.ipAddress"), found.get("guest.hostName")
        if not (address and hostname):
            return False  # VMware Tools have not reported the booted guest yet
        port = pool_options(pool).ready_port or self.options.ready_port
        return port is None or await tcp_open(address, port, self.options.ready_probe_timeout)

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        doing = f"taking snapshot {snapshot!r} of {name!r}"
        found = await self._require(pool, name, ["snapshot"])
        if any(node.name == snapshot for node in snapshot_tree(found.get("snapshot"))):
            raise ProviderError(f"vSphere: VM {name!r} already has a snapshot {snapshot!r}")
        vm: vim.VirtualMachine = found["obj"]
        # with memory, as the original: a revert returns to the running guest, not a cold boot
        task = await self._sessions.run(lambda _: vm.CreateSnapshot(snapshot, "vmpooler", True, False), doing)
        await wait_for_task(self._sessions, task, doing, self.options.task_timeout)

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        doing = f"reverting {name!r} to snapshot {snapshot!r}"
        found = await self._require(pool, name, ["snapshot"])
        node = next((n for n in snapshot_tree(found.get("snapshot")) if n.name == snapshot), None)
        if node is None:
            raise PermanentProviderError(f"vSphere: VM {name!r} has no snapshot {snapshot!r}")
        task = await self._sessions.run(lambda _: node.snapshot.Revert(None, None), doing)
        await wait_for_task(self._sessions, task, doing, self.options.task_timeout)

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        if size_gb < 1:
            raise PermanentProviderError(f"vSphere: a disk must be at least 1 GB, not {size_gb}")
        doing = f"adding a {size_gb} GB disk to {name!r}"
        found = await self._require(pool, name, ["config.hardware.device", "config.files.vmPathName"])
        datastore = datastore_of(found.get("config.files.vmPathName"))
        if datastore is None:
            raise PermanentProviderError(f"vSphere: cannot tell which datastore VM {name!r} is on")
        spec = add_disk_spec(found.get("config.hardware.device", []), datastore, size_gb)
        vm: vim.VirtualMachine = found["obj"]
        task = await self._sessions.run(lambda _: vm.Reconfigure(spec), doing)
        await wait_for_task(self._sessions, task, doing, self.options.task_timeout)

    async def tag_vm_user(self, pool: PoolTarget, name: str, user: str) -> None:
        doing = f"recording the user of {name!r}"
        vm: vim.VirtualMachine = (await self._require(pool, name, ["name"]))["obj"]
        task = await self._sessions.run(lambda _: vm.Reconfigure(mark_spec({USER_KEY: user})), doing)
        await wait_for_task(self._sessions, task, doing, self.options.task_timeout)

    purges = True

    async def purge_unconfigured(self, pools: list[PoolTarget]) -> list[str]:
        """Delete the unconfigured folders of the pools' base folders, with their VMs (see ``purge``)."""
        configured = [(pool, pool_options(pool)) for pool in pools]
        allowlist = self.options.resources_allowlist or []
        found = await self._sessions.run(
            lambda c: purge.unconfigured_folders(c, configured, self.options.datacenter, allowlist),
            "finding unconfigured folders",
        )
        for item in found:
            doing = f"purging unconfigured folder {item.path!r}"
            log.info("vSphere: %s", doing)
            for vm in item.powered_on:
                task = await self._gone_or(vm.PowerOff, doing)
                if task is not None:
                    await wait_for_task(
                        self._sessions, task, doing, self.options.task_timeout, (vim.fault.InvalidPowerState,)
                    )
            # destroying a folder destroys everything in it
            task = await self._gone_or(item.folder.Destroy, doing)
            if task is not None:
                await wait_for_task(
                    self._sessions, task, doing, self.options.task_timeout, (vmodl.fault.ManagedObjectNotFound,)
                )
        return [item.path for item in found]

    async def close(self) -> None:
        await self._sessions.close()

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            **super().describe(),
            "server": o.server,
            "port": o.port,
            "username": o.username,
            "insecure": o.insecure,
            "datacenter": o.datacenter,
            "connection_pool_size": o.connection_pool_size,
            "create_linked_clones": o.create_linked_clones,
            "create_folders": o.create_folders,
            "create_template_delta_disks": o.create_template_delta_disks,
            "manage_host_selection": o.manage_host_selection,
        }

    def _marked(
        self, content: Content, pool: PoolTarget, cfg: VSpherePoolOptions, name: str, paths: list[str]
    ) -> Props | None:
        return resolve.marked_vm(content, pool, cfg, self.options.datacenter, name, paths)

    async def _find(self, pool: PoolTarget, name: str, paths: list[str]) -> Props | None:
        cfg = pool_options(pool)
        return await self._sessions.run(
            lambda content: self._marked(content, pool, cfg, name, paths),
            f"looking up VM {name!r} of pool {pool.name!r}",
        )

    async def _require(self, pool: PoolTarget, name: str, paths: list[str]) -> Props:
        found = await self._find(pool, name, paths)
        if found is None:
            raise PermanentProviderError(f"vSphere: no VM {name!r} in pool {pool.name!r}")
        return found

    async def _gone_or(self, start: Callable[[], vim.Task], doing: str) -> vim.Task | None:
        """The task ``start()`` begins, or None when the VM vanished meanwhile (someone else destroyed it)."""

        def work(_: Content) -> vim.Task | None:
            try:
                task: vim.Task = start()
            except vmodl.fault.ManagedObjectNotFound:
                return None
            return task

        return await self._sessions.run(work, doing)

    def _choose_host(self, pool: PoolTarget, cfg: VSpherePoolOptions, target: resolve.CloneTarget) -> HostLoad | None:
        """The host to clone onto; None when vCenter is to choose (no clone_target)."""
        if not target.hosts:
            return None  # no clone_target, or a cluster whose hosts vCenter chooses (manage_host_selection off)
        host = least_used(target.hosts, self._in_flight, self.options.utilization_limit)
        if host is None:
            raise ProviderError(
                f"vSphere: pool {pool.name!r}: no host of clone_target {cfg.clone_target!r} can take a clone "
                f"(disconnected, in maintenance mode, failing or over {self.options.utilization_limit:g}% busy)"
            )
        return host

    @contextlib.contextmanager
    def _cloning_on(self, host: HostLoad | None) -> Iterator[None]:
        """Count a clone in flight to ``host`` while it lasts (see placement.least_used)."""
        if host is None:
            yield
            return
        self._in_flight[host.name] += 1
        try:
            yield
        finally:
            self._in_flight[host.name] -= 1
            if self._in_flight[host.name] <= 0:
                del self._in_flight[host.name]

    def _host_loads(self, content: Content, compute: ComputeTarget) -> list[HostLoad]:
        """Blocking: the loads of a cluster's hosts, read again once ``host_selection_max_age`` seconds old."""
        with self._loads_lock:
            cached = self._loads.get(compute.name)
            if cached is not None and time.monotonic() - cached[0] < self.options.host_selection_max_age:
                return cached[1]
        loads = host_loads(content, compute.hosts)
        log.debug("vSphere: read the load of %d host(s) of %s", len(loads), compute.name)
        with self._loads_lock:
            self._loads[compute.name] = (time.monotonic(), loads)
        return loads

    async def _add_delta_disks(self, pool: PoolTarget, dc: Datacenter) -> resolve.CloneSource:
        """The template with the delta-disk layer its linked clones share: added once, marked on the template."""
        doing = f"adding delta disks to template {pool.template!r} for linked clones"

        async def reconfigure(source: resolve.CloneSource) -> vim.Task:
            def spec(content: Content) -> vim.vm.ConfigSpec:
                found = retrieve(content, [source.vm], vim.VirtualMachine, ["config.hardware.device", "datastore"])
                stores = found[0].get("datastore", [])
                names = {item["obj"]: item["name"] for item in retrieve(content, stores, vim.Datastore, ["name"])}
                return delta_disk_spec(found[0].get("config.hardware.device", []), names)

            change = await self._sessions.run(spec, doing)
            log.info("vSphere: %s", doing)
            return await self._sessions.run(lambda _: source.vm.Reconfigure(change), doing)

        return await self._prepare_template(pool, dc, doing, lambda source: bool(source.delta_disks), reconfigure)

    async def _take_base_snapshot(self, pool: PoolTarget, dc: Datacenter) -> resolve.CloneSource:
        """The template with a snapshot to link clones to: taken once, by one clone, while others wait."""
        doing = f"taking snapshot {LINKED_CLONE_SNAPSHOT!r} of template {pool.template!r} for linked clones"

        async def snapshot(source: resolve.CloneSource) -> vim.Task:
            log.info("vSphere: template %s has no snapshot; %s", pool.template, doing)
            return await self._sessions.run(
                lambda _: source.vm.CreateSnapshot(LINKED_CLONE_SNAPSHOT, "made by vmpooler", False, False), doing
            )

        return await self._prepare_template(pool, dc, doing, lambda source: source.snapshot is not None, snapshot)

    async def _prepare_template(
        self,
        pool: PoolTarget,
        dc: Datacenter,
        doing: str,
        prepared: Callable[[resolve.CloneSource], bool],
        start: Callable[[resolve.CloneSource], Awaitable[vim.Task]],
    ) -> resolve.CloneSource:
        """Change the template for linked clones once: one change at a time, each after reading the template
        afresh, so a clone that waited finds the change another made (or one made before a restart)."""
        if self._base_snapshot_lock is None:
            self._base_snapshot_lock = asyncio.Lock()
        async with self._base_snapshot_lock:
            source = await self._sessions.run(lambda c: resolve.clone_source(c, pool, dc), doing)
            if prepared(source):
                return source
            task = await start(source)
            await wait_for_task(self._sessions, task, doing, self.options.task_timeout)
            return await self._sessions.run(lambda c: resolve.clone_source(c, pool, dc), doing)

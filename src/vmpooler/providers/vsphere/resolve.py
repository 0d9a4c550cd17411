"""Resolves a pool's configuration against vCenter's inventory (blocking): where its VMs are and where clones go.

Each function runs inside one ``SessionPool.run`` step. Whatever the configuration names and
vCenter does not have is a PermanentProviderError naming the pool, the key and the missing thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyVmomi import vim

from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.vsphere.connection import Content
from vmpooler.providers.vsphere.inventory import (
    ComputeTarget,
    Datacenter,
    Props,
    ensure_folder,
    find_compute,
    find_datacenter,
    find_datastore,
    find_entity,
    find_folder,
    find_network,
    find_vm,
    folder_vms,
    retrieve,
    snapshot_tree,
)
from vmpooler.providers.vsphere.options import VSpherePoolOptions
from vmpooler.providers.vsphere.placement import HostLoad, host_loads
from vmpooler.providers.vsphere.specs import DELTA_DISKS_KEY, POOL_KEY, network_card_spec, option

__all__ = [
    "CloneSource",
    "CloneTarget",
    "HostLoads",
    "clone_source",
    "clone_target",
    "datacenter",
    "marked_vm",
    "network_change",
    "pool_vms",
]


@dataclass(frozen=True)
class CloneSource:
    """The template and, when it has one, its current snapshot (what a linked clone is made from)."""

    vm: vim.VirtualMachine
    snapshot: vim.vm.Snapshot | None
    snapshot_name: str | None
    resource_pool: vim.ResourcePool | None
    delta_disks: bool  # the template has the delta-disk layer linked clones share (create_template_delta_disks)


@dataclass(frozen=True)
class CloneTarget:
    """Everything a clone needs but its host, which is chosen afterwards from ``hosts``."""

    folder: vim.Folder
    resource_pool: vim.ResourcePool
    datastore: vim.Datastore | None
    hosts: list[HostLoad]  # empty: vCenter places the VM itself
    compute: ComputeTarget | None  # the clone_target, when one is set


#: reads the loads of a clone target's hosts (the provider's cache, see host_selection_max_age)
HostLoads = Callable[[Content, ComputeTarget], list[HostLoad]]


def datacenter(content: Content, pool: PoolTarget, cfg: VSpherePoolOptions, default: str | None) -> Datacenter:
    try:
        return find_datacenter(content, cfg.datacenter or default)
    except PermanentProviderError as exc:
        raise PermanentProviderError(f"pool {pool.name!r}: {exc}") from exc


def marked_vm(
    content: Content, pool: PoolTarget, cfg: VSpherePoolOptions, default_dc: str | None, name: str, paths: list[str]
) -> Props | None:
    """``paths`` of the pool's VM called ``name``; None when there is none or it belongs to another pool."""
    dc = datacenter(content, pool, cfg, default_dc)
    folder = find_folder(content, dc, cfg.folder)
    vm = find_vm(content, folder, name) if folder is not None else None
    if vm is None:
        return None
    found = retrieve(content, [vm], vim.VirtualMachine, _with_marks(paths))
    if not found or option(found[0].get("config.extraConfig"), POOL_KEY) != pool.name:
        return None
    return found[0]


def pool_vms(
    content: Content, pool: PoolTarget, cfg: VSpherePoolOptions, default_dc: str | None, paths: list[str]
) -> list[Props]:
    """``paths`` of every VM in the pool's folder that is marked for the pool, in one query."""
    dc = datacenter(content, pool, cfg, default_dc)
    folder = find_folder(content, dc, cfg.folder)
    if folder is None:
        return []
    found = folder_vms(content, folder, _with_marks(paths))
    return [vm for vm in found if option(vm.get("config.extraConfig"), POOL_KEY) == pool.name]


def clone_source(content: Content, pool: PoolTarget, dc: Datacenter) -> CloneSource:
    template = find_entity(content, dc, pool.template)
    if not isinstance(template, vim.VirtualMachine):
        raise PermanentProviderError(
            f"pool {pool.name!r}: template {pool.template!r} not found in datacenter {dc.name!r}"
        )
    props = retrieve(content, [template], vim.VirtualMachine, ["snapshot", "resourcePool", "config.extraConfig"])[0]
    info: vim.vm.SnapshotInfo | None = props.get("snapshot")
    current = info.currentSnapshot if info is not None else None
    name = next((node.name for node in snapshot_tree(info) if node.snapshot == current), None)
    delta = option(props.get("config.extraConfig"), DELTA_DISKS_KEY) == "true"
    return CloneSource(template, current, name, props.get("resourcePool"), delta)


def clone_target(
    content: Content,
    pool: PoolTarget,
    cfg: VSpherePoolOptions,
    dc: Datacenter,
    source: CloneSource,
    name: str,
    *,
    create_folder: bool,
    loads: HostLoads | None,
) -> CloneTarget:
    """Resolve folder (made when missing if ``create_folder``), datastore and compute; ProviderError if ``name``
    exists. ``loads`` reads the hosts' loads when the provider chooses the host (None: it does not)."""
    datastore = None
    if cfg.datastore:
        datastore = find_datastore(content, dc, cfg.datastore)
        if datastore is None:
            raise PermanentProviderError(
                f"pool {pool.name!r}: datastore {cfg.datastore!r} not found in datacenter {dc.name!r}"
            )
    target = cfg.clone_target
    hosts: list[HostLoad] = []
    compute = None
    if target:
        compute = find_compute(content, dc, target)
        if compute is None:
            raise PermanentProviderError(
                f"pool {pool.name!r}: clone_target {target!r} is neither a cluster nor a host in datacenter {dc.name!r}"
            )
        resource_pool = compute.resource_pool
        if not compute.cluster:
            hosts = host_loads(content, compute.hosts)  # one named host: every clone goes there
        elif loads is not None:
            hosts = loads(content, compute)
    elif source.resource_pool is not None:
        resource_pool = source.resource_pool
    else:
        raise PermanentProviderError(
            f"pool {pool.name!r}: no clone_target is set and template {pool.template!r} has no resource pool to "
            "share (a vSphere template has none)"
        )
    folder = ensure_folder(content, dc, cfg.folder) if create_folder else find_folder(content, dc, cfg.folder)
    if folder is None:
        raise PermanentProviderError(
            f"pool {pool.name!r}: folder {cfg.folder!r} not found in datacenter {dc.name!r} "
            "(with :config: create_folders: true it is made)"
        )
    if find_vm(content, folder, name) is not None:
        raise ProviderError(f"vSphere: a VM called {name!r} already exists in folder {cfg.folder!r}")
    return CloneTarget(folder, resource_pool, datastore, hosts, compute)


def network_change(
    content: Content, pool: PoolTarget, dc: Datacenter, source: CloneSource, network_name: str
) -> vim.vm.device.VirtualDeviceSpec:
    """An edit of the template's first network card that puts the clone on ``network_name``."""
    network = find_network(content, dc, network_name)
    if network is None:
        raise PermanentProviderError(
            f"pool {pool.name!r}: network {network_name!r} not found in datacenter {dc.name!r}"
        )
    found = retrieve(content, [source.vm], vim.VirtualMachine, ["config.hardware.device"])
    devices = found[0].get("config.hardware.device", []) if found else []
    card = next((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), None)
    if card is None:
        raise PermanentProviderError(f"pool {pool.name!r}: template {pool.template!r} has no network card to connect")
    port_group = None
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        props = retrieve(
            content, [network], vim.dvs.DistributedVirtualPortgroup, ["key", "config.distributedVirtualSwitch"]
        )
        switch = props[0]["config.distributedVirtualSwitch"]
        uuid = retrieve(content, [switch], vim.DistributedVirtualSwitch, ["uuid"])[0]["uuid"]
        port_group = (uuid, props[0]["key"])
    return network_card_spec(card, network, network_name, port_group)


def _with_marks(paths: list[str]) -> list[str]:
    return list(dict.fromkeys([*paths, "config.extraConfig"]))

"""Resolves a pool's configuration against vCenter's inventory (blocking): where its VMs are and where clones go.

Each function runs inside one ``SessionPool.run`` step. Whatever the configuration names and
vCenter does not have is a PermanentProviderError naming the pool, the key and the missing thing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyVmomi import vim

from vmpooler.domain import PoolTarget
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.vsphere.connection import Content
from vmpooler.providers.vsphere.inventory import (
    Datacenter,
    Props,
    ensure_folder,
    find_compute,
    find_datacenter,
    find_datastore,
    find_entity,
    find_folder,
    find_vm,
    folder_vms,
    retrieve,
    snapshot_tree,
)
from vmpooler.providers.vsphere.options import VSpherePoolOptions
from vmpooler.providers.vsphere.placement import HostLoad, host_loads
from vmpooler.providers.vsphere.specs import POOL_KEY, option

__all__ = ["CloneSource", "CloneTarget", "clone_source", "clone_target", "datacenter", "marked_vm", "pool_vms"]


@dataclass(frozen=True)
class CloneSource:
    """The template and, when it has one, its current snapshot (what a linked clone is made from)."""

    vm: vim.VirtualMachine
    snapshot: vim.vm.Snapshot | None
    snapshot_name: str | None
    resource_pool: vim.ResourcePool | None


@dataclass(frozen=True)
class CloneTarget:
    """Everything a clone needs but its host, which is chosen afterwards from ``hosts``."""

    folder: vim.Folder
    resource_pool: vim.ResourcePool
    datastore: vim.Datastore | None
    hosts: list[HostLoad]  # empty: vCenter places the VM itself


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
    props = retrieve(content, [template], vim.VirtualMachine, ["snapshot", "resourcePool"])[0]
    info: vim.vm.SnapshotInfo | None = props.get("snapshot")
    current = info.currentSnapshot if info is not None else None
    name = next((node.name for node in snapshot_tree(info) if node.snapshot == current), None)
    return CloneSource(template, current, name, props.get("resourcePool"))


def clone_target(
    content: Content, pool: PoolTarget, cfg: VSpherePoolOptions, dc: Datacenter, source: CloneSource, name: str
) -> CloneTarget:
    """Resolve folder (created when missing), datastore and compute; ProviderError if ``name`` exists."""
    datastore = None
    if cfg.datastore:
        datastore = find_datastore(content, dc, cfg.datastore)
        if datastore is None:
            raise PermanentProviderError(
                f"pool {pool.name!r}: datastore {cfg.datastore!r} not found in datacenter {dc.name!r}"
            )
    target = cfg.clone_target
    hosts: list[HostLoad] = []
    if target:
        compute = find_compute(content, dc, target)
        if compute is None:
            raise PermanentProviderError(
                f"pool {pool.name!r}: clone_target {target!r} is neither a cluster nor a host in datacenter {dc.name!r}"
            )
        resource_pool = compute.resource_pool
        hosts = host_loads(content, compute.hosts)
    elif source.resource_pool is not None:
        resource_pool = source.resource_pool
    else:
        raise PermanentProviderError(
            f"pool {pool.name!r}: no clone_target is set and template {pool.template!r} has no resource pool to "
            "share (a vSphere template has none)"
        )
    folder = ensure_folder(content, dc, cfg.folder)
    if find_vm(content, folder, name) is not None:
        raise ProviderError(f"vSphere: a VM called {name!r} already exists in folder {cfg.folder!r}")
    return CloneTarget(folder, resource_pool, datastore, hosts)


def _with_marks(paths: list[str]) -> list[str]:
    return list(dict.fromkeys([*paths, "config.extraConfig"]))

"""Blocking look-ups in vCenter's inventory: datacenters, folders, templates, datastores, compute, VMs.

Every read goes through the PropertyCollector, asking for named properties of many objects in
one round trip, never through pyVmomi's one-property-per-request accessors (which also break on
properties the server leaves unset). Names are matched exactly, as vCenter shows them.
"""

# pyVmomi's data-object constructors carry no annotations

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from vmpooler.errors import PermanentProviderError
from vmpooler.providers.vsphere.connection import Content

__all__ = [
    "ComputeTarget",
    "Datacenter",
    "Props",
    "ensure_folder",
    "find_compute",
    "find_datacenter",
    "find_datastore",
    "find_entity",
    "find_folder",
    "find_network",
    "find_vm",
    "folder_vms",
    "retrieve",
    "snapshot_tree",
]

log = logging.getLogger(__name__)

Props = dict[str, Any]
_PAGE = 500  # objects per PropertyCollector page
_Collector = vmodl.query.PropertyCollector


@dataclass(frozen=True)
class Datacenter:
    ref: vim.Datacenter
    name: str
    path: str  # its inventory path, e.g. "DC0" or "Europe/DC0"
    vm_folder: vim.Folder
    host_folder: vim.Folder


@dataclass(frozen=True)
class ComputeTarget:
    """Where a clone may run: the hosts to choose from and the resource pool they share."""

    name: str
    hosts: list[vim.HostSystem]
    resource_pool: vim.ResourcePool
    cluster: bool  # False: ``name`` is one host, which every clone goes to


def retrieve(content: Content, objects: Sequence[ManagedObject], kind: type, paths: list[str]) -> list[Props]:
    """``paths`` of each object (of type ``kind``); each result also holds the object as ``"obj"``.

    Unset properties are absent from a result. Raises the server's fault when an object is gone.
    """
    if not objects:
        return []
    spec = _Collector.FilterSpec(
        objectSet=[_Collector.ObjectSpec(obj=obj) for obj in objects],
        propSet=[_Collector.PropertySpec(type=kind, pathSet=paths)],
    )
    return _collect(content, spec)


def folder_vms(content: Content, folder: vim.Folder, paths: list[str]) -> list[Props]:
    """``paths`` of every VM directly in ``folder``, in one query."""
    spec = _Collector.FilterSpec(
        objectSet=[
            _Collector.ObjectSpec(
                obj=folder,
                skip=True,
                selectSet=[_Collector.TraversalSpec(name="children", type=vim.Folder, path="childEntity", skip=False)],
            )
        ],
        propSet=[_Collector.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )
    return _collect(content, spec)


def find_datacenter(content: Content, name: str | None) -> Datacenter:
    """The datacenter called ``name`` (anywhere under the root folder), or the only one when None."""
    folders = _recursive_folders("folders")
    spec = _Collector.FilterSpec(
        objectSet=[_Collector.ObjectSpec(obj=content.rootFolder, skip=False, selectSet=[folders])],
        propSet=[
            _Collector.PropertySpec(type=vim.Folder, pathSet=["name", "parent"]),
            _Collector.PropertySpec(type=vim.Datacenter, pathSet=["name", "parent", "vmFolder", "hostFolder"]),
        ],
    )
    found = _collect(content, spec)
    datacenters = [item for item in found if isinstance(item["obj"], vim.Datacenter)]
    if name is None:
        if len(datacenters) != 1:
            listed = ", ".join(sorted(dc["name"] for dc in datacenters)) or "none"
            raise PermanentProviderError(f"no datacenter is configured and vCenter has {len(datacenters)} ({listed})")
        chosen = datacenters[0]
    else:
        match = [dc for dc in datacenters if dc["name"] == name]
        if not match:
            raise PermanentProviderError(f"datacenter {name!r} not found")
        chosen = match[0]
    names = {item["obj"]: item["name"] for item in found}
    parents = {item["obj"]: item.get("parent") for item in found}
    path = [chosen["name"]]
    parent = chosen.get("parent")
    while parent is not None and parent != content.rootFolder:
        path.append(names[parent])
        parent = parents.get(parent)
    return Datacenter(chosen["obj"], chosen["name"], "/".join(reversed(path)), chosen["vmFolder"], chosen["hostFolder"])


def find_entity(content: Content, dc: Datacenter, path: str) -> vim.ManagedEntity | None:
    """The entity at ``path``: relative to the datacenter's VM folder, or a full path when it starts with /."""
    full = path.strip("/") if path.startswith("/") else f"{dc.path}/vm/{path.strip('/')}"
    return _search(content).FindByInventoryPath(full)


def find_folder(content: Content, dc: Datacenter, path: str) -> vim.Folder | None:
    found = find_entity(content, dc, path)
    return found if isinstance(found, vim.Folder) else None


def ensure_folder(content: Content, dc: Datacenter, path: str) -> vim.Folder:
    """The VM folder at ``path`` (relative to the datacenter's VM folder), creating what is missing."""
    if path.startswith("/"):
        existing = find_folder(content, dc, path)
        if existing is None:
            raise PermanentProviderError(f"folder {path!r} not found (a full path must already exist)")
        return existing
    folder = dc.vm_folder
    parts = [p for p in path.split("/") if p]
    for depth, part in enumerate(parts, 1):
        child = _search(content).FindChild(folder, part)
        if child is None:
            try:
                child = folder.CreateFolder(part)
                log.info("vSphere: created folder %r in datacenter %r", "/".join(parts[:depth]), dc.name)
            except vim.fault.DuplicateName:  # made by a concurrent clone meanwhile
                child = _search(content).FindChild(folder, part)
        if not isinstance(child, vim.Folder):
            raise PermanentProviderError(f"folder {path!r}: {part!r} is not a folder in datacenter {dc.name!r}")
        folder = child
    return folder


def find_datastore(content: Content, dc: Datacenter, name: str) -> vim.Datastore | None:
    spec = _Collector.FilterSpec(
        objectSet=[
            _Collector.ObjectSpec(
                obj=dc.ref,
                skip=True,
                selectSet=[_Collector.TraversalSpec(name="stores", type=vim.Datacenter, path="datastore", skip=False)],
            )
        ],
        propSet=[_Collector.PropertySpec(type=vim.Datastore, pathSet=["name"])],
    )
    return next((item["obj"] for item in _collect(content, spec) if item["name"] == name), None)


def find_compute(content: Content, dc: Datacenter, name: str) -> ComputeTarget | None:
    """The cluster called ``name`` (all its hosts), else the host called ``name``, in the datacenter."""
    to_hosts = _Collector.TraversalSpec(name="hosts", type=vim.ComputeResource, path="host", skip=False)
    folders = _recursive_folders("folders", also=["hosts"])
    spec = _Collector.FilterSpec(
        objectSet=[_Collector.ObjectSpec(obj=dc.host_folder, skip=True, selectSet=[folders, to_hosts])],
        propSet=[
            _Collector.PropertySpec(type=vim.ComputeResource, pathSet=["name", "host", "resourcePool"]),
            _Collector.PropertySpec(type=vim.HostSystem, pathSet=["name", "parent"]),
        ],
    )
    found = _collect(content, spec)
    computes = {item["obj"]: item for item in found if isinstance(item["obj"], vim.ComputeResource)}
    for item in computes.values():
        if isinstance(item["obj"], vim.ClusterComputeResource) and item["name"] == name:
            return ComputeTarget(name, list(item.get("host", [])), item["resourcePool"], cluster=True)
    for item in found:
        if isinstance(item["obj"], vim.HostSystem) and item["name"] == name and item.get("parent") in computes:
            return ComputeTarget(name, [item["obj"]], computes[item["parent"]]["resourcePool"], cluster=False)
    return None


def find_network(content: Content, dc: Datacenter, name: str) -> vim.Network | None:
    """The network (standard or distributed port group) called ``name`` in the datacenter."""
    found = retrieve(content, [dc.ref], vim.Datacenter, ["network"])
    networks = found[0].get("network", []) if found else []
    named = retrieve(content, networks, vim.Network, ["name"])
    return next((item["obj"] for item in named if item["name"] == name), None)


def find_vm(content: Content, folder: vim.Folder, name: str) -> vim.VirtualMachine | None:
    found = _search(content).FindChild(folder, name)
    return found if isinstance(found, vim.VirtualMachine) else None


def snapshot_tree(info: vim.vm.SnapshotInfo | None) -> Iterator[vim.vm.SnapshotTree]:
    """Every snapshot of a VM, parents before children."""
    pending = list(info.rootSnapshotList) if info is not None else []
    while pending:
        node = pending.pop(0)
        yield node
        pending[0:0] = list(node.childSnapshotList)


def _search(content: Content) -> vim.SearchIndex:
    assert content.searchIndex is not None, "vCenter always has a search index"
    return content.searchIndex


def _recursive_folders(name: str, also: Sequence[str] = ()) -> vmodl.query.PropertyCollector.TraversalSpec:
    """Down through folders, however deep, then on along the traversals named in ``also``."""
    return _Collector.TraversalSpec(
        name=name,
        type=vim.Folder,
        path="childEntity",
        skip=False,
        selectSet=[_Collector.SelectionSpec(name=step) for step in (name, *also)],
    )


def _collect(content: Content, spec: vmodl.query.PropertyCollector.FilterSpec) -> list[Props]:
    collector = content.propertyCollector
    result = collector.RetrievePropertiesEx([spec], _Collector.RetrieveOptions(maxObjects=_PAGE))
    found: list[Props] = []
    while result is not None:
        for item in result.objects:
            for missing in item.missingSet:
                # vCenter reports a property it would not show as missing, with the reason: a lost session
                # (NotAuthenticated) or a lacking privilege; either way the answer is unusable
                if isinstance(missing.fault, vim.fault.NoPermission):
                    raise missing.fault
            props: Props = {prop.name: prop.val for prop in item.propSet}
            props["obj"] = item.obj
            found.append(props)
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(result.token)
    return found

"""Finds what ``purge_unconfigured_resources`` deletes in vCenter: the original's rule, blocking, without deleting.

As the original: for every pool, the folder holding the pool's folder is a *base folder*; any other
folder directly in a base folder that is neither some pool's folder nor in ``resources_allowlist`` is
unconfigured, and is deleted with the VMs in it. Unlike the original, the datacenter's own VM folder is
never a base folder (a pool folder directly in it would otherwise make every template folder there a
candidate); such a pool is logged and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyVmomi import vim

from vmpooler.domain import PoolTarget
from vmpooler.providers.vsphere.connection import Content
from vmpooler.providers.vsphere.inventory import find_datacenter, find_folder, folder_vms, retrieve
from vmpooler.providers.vsphere.options import VSpherePoolOptions

__all__ = ["Unconfigured", "unconfigured_folders"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unconfigured:
    """A folder to delete, and the VMs directly in it that are powered on (they must be off first)."""

    path: str  # datacenter/vm/... as the log shows it
    folder: vim.Folder
    powered_on: list[vim.VirtualMachine]


def unconfigured_folders(
    content: Content,
    pools: list[tuple[PoolTarget, VSpherePoolOptions]],
    default_dc: str | None,
    allowlist: list[str],
) -> list[Unconfigured]:
    """Blocking: every unconfigured folder in the pools' base folders."""
    configured: dict[tuple[str, str], set[str]] = {}  # (datacenter, base folder) -> pool folder names in it
    for pool, cfg in pools:
        parts = [part for part in cfg.folder.split("/") if part]
        if cfg.folder.startswith("/") or len(parts) < 2:
            log.warning(
                "vSphere purge: pool %s's folder %r is not below a folder of its own; its siblings are not purged",
                pool.name,
                cfg.folder,
            )
            continue
        dc_name = cfg.datacenter or default_dc or ""
        configured.setdefault((dc_name, "/".join(parts[:-1])), set()).add(parts[-1])
    found: list[Unconfigured] = []
    for (dc_name, base), keep in configured.items():
        dc = find_datacenter(content, dc_name or None)
        folder = find_folder(content, dc, base)
        if folder is None:
            continue
        children = retrieve(content, [folder], vim.Folder, ["childEntity"])[0].get("childEntity", [])
        subfolders = [child for child in children if isinstance(child, vim.Folder)]
        for child in retrieve(content, subfolders, vim.Folder, ["name"]):
            if child["name"] in keep or child["name"] in allowlist:
                continue
            vms = folder_vms(content, child["obj"], ["runtime.powerState"])
            on = [vm["obj"] for vm in vms if vm.get("runtime.powerState") == vim.VirtualMachine.PowerState.poweredOn]
            found.append(Unconfigured(f"{dc.name}/vm/{base}/{child['name']}", child["obj"], on))
    return found

"""Builds the pyVmomi specs the provider sends (clone, disk, marks) and reads its marks back; no I/O.

A VM this provider makes is marked in its VMX ``extraConfig`` with the pool it belongs to
(``vmpooler.pool``) and the template it came from; ``tag_vm_user`` adds ``vmpooler.user``. The marks
travel inside the clone request itself, so no VM ever exists unmarked, and a pool's inventory only
lists VMs marked for it: two pools may share a folder, and whatever else lives in that folder is
never taken for a pool's VM. The keys are not ``guestinfo.*`` ones, which a guest could rewrite.
The original's annotation (who made the VM, from what, when) is set too, for people reading vCenter.
"""

# pyVmomi's data-object constructors carry no annotations

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyVmomi import vim

from vmpooler.errors import PermanentProviderError
from vmpooler.providers.vsphere.options import VSpherePoolOptions

__all__ = [
    "POOL_KEY",
    "TEMPLATE_KEY",
    "USER_KEY",
    "ClonePlacement",
    "add_disk_spec",
    "clone_spec",
    "datastore_of",
    "mark_spec",
    "option",
    "vmx_options",
]

POOL_KEY = "vmpooler.pool"
TEMPLATE_KEY = "vmpooler.template"
USER_KEY = "vmpooler.user"

_RESERVED_SCSI_UNIT = 7  # the controller's own unit number
_SCSI_UNITS = 16
_DATASTORE_IN_PATH = re.compile(r"^\[(?P<name>[^\]]+)\]")


@dataclass(frozen=True)
class ClonePlacement:
    """Where a clone goes, resolved from the pool's configuration."""

    folder: vim.Folder
    resource_pool: vim.ResourcePool
    host: vim.HostSystem | None
    datastore: vim.Datastore | None


def clone_spec(
    *,
    pool: str,
    name: str,
    template: str,
    created_by: str,
    placement: ClonePlacement,
    snapshot: vim.vm.Snapshot | None,
    vmx_options: dict[str, str],
) -> vim.vm.CloneSpec:
    """A clone of ``template`` into ``placement``, linked to ``snapshot`` when one is given.

    Powered on separately: a clone that fails to start should fail as a power-on, not as a clone.
    """
    moves = vim.vm.RelocateSpec.DiskMoveOptions
    # linked: the clone's disks are children of the snapshot's, made in seconds and sharing its blocks
    disk_move = moves.createNewChildDiskBacking if snapshot is not None else moves.moveAllDiskBackingsAndConsolidate
    location = vim.vm.RelocateSpec(
        pool=placement.resource_pool, host=placement.host, datastore=placement.datastore, diskMoveType=disk_move
    )
    annotation = {
        "name": name,
        "created_by": created_by,
        "base_template": template,
        "creation_timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    marks = {"guestinfo.hostname": name, **vmx_options, POOL_KEY: pool, TEMPLATE_KEY: template}
    config = vim.vm.ConfigSpec(annotation=json.dumps(annotation, indent=2), extraConfig=_options(marks))
    return vim.vm.CloneSpec(location=location, snapshot=snapshot, powerOn=False, template=False, config=config)


def vmx_options(cfg: VSpherePoolOptions) -> dict[str, str]:
    """The pool's own VMX settings for its clones (the original's memory-snapshot tuning)."""
    options = {}
    if cfg.snapshot_main_mem_io_block_pages is not None:
        options["mainMem.ioBlockPages"] = str(cfg.snapshot_main_mem_io_block_pages)
    if cfg.snapshot_main_mem_iowait is not None:
        options["mainMem.iowait"] = str(cfg.snapshot_main_mem_iowait)
    return options


def mark_spec(marks: dict[str, str]) -> vim.vm.ConfigSpec:
    """A reconfiguration that sets these ``extraConfig`` marks."""
    return vim.vm.ConfigSpec(extraConfig=_options(marks))


def option(values: Iterable[vim.option.OptionValue] | None, key: str) -> str | None:
    """The value of an ``extraConfig`` key; the last one wins if a server keeps duplicates."""
    found = None
    for value in values or ():
        if value.key == key:
            found = value.value
    return None if found is None else str(found)


def add_disk_spec(devices: Sequence[vim.vm.device.VirtualDevice], datastore: str, size_gb: int) -> vim.vm.ConfigSpec:
    """A new thin disk of ``size_gb`` on the VM's first SCSI controller, in the next free unit."""
    controllers = [d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController)]
    if not controllers:
        raise PermanentProviderError("the VM has no SCSI controller to attach a disk to")
    controller = controllers[0]
    used = {d.unitNumber for d in devices if d.controllerKey == controller.key and d.unitNumber is not None}
    free = [unit for unit in range(_SCSI_UNITS) if unit != _RESERVED_SCSI_UNIT and unit not in used]
    if not free:
        raise PermanentProviderError("the VM's SCSI controller has no free unit for another disk")
    disk = vim.vm.device.VirtualDisk(
        controllerKey=controller.key,
        unitNumber=free[0],
        capacityInKB=size_gb * 1024 * 1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", thinProvisioned=True, fileName=f"[{datastore}]"
        ),
    )
    change = vim.vm.device.VirtualDeviceSpec(
        operation=vim.vm.device.VirtualDeviceSpec.Operation.add,
        fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create,
        device=disk,
    )
    return vim.vm.ConfigSpec(deviceChange=[change])


def datastore_of(vmx_path: str | None) -> str | None:
    """The datastore name in a path like ``[LocalDS_0] vm1/vm1.vmx``."""
    match = _DATASTORE_IN_PATH.match(vmx_path or "")
    return match.group("name") if match else None


def _options(values: dict[str, str]) -> list[vim.option.OptionValue]:
    return [vim.option.OptionValue(key=key, value=str(value)) for key, value in values.items()]

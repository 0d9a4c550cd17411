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
from typing import Any

from pyVmomi import vim

from vmpooler.errors import PermanentProviderError
from vmpooler.providers.vsphere.options import VSpherePoolOptions

__all__ = [
    "DELTA_DISKS_KEY",
    "POOL_KEY",
    "TEMPLATE_KEY",
    "USER_KEY",
    "ClonePlacement",
    "add_disk_spec",
    "clone_spec",
    "datastore_of",
    "delta_disk_spec",
    "mark_spec",
    "network_card_spec",
    "option",
    "vmx_options",
]

POOL_KEY = "vmpooler.pool"
TEMPLATE_KEY = "vmpooler.template"
USER_KEY = "vmpooler.user"
#: set on a template once it has the delta-disk layer linked clones share (create_template_delta_disks)
DELTA_DISKS_KEY = "vmpooler.delta_disks"

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
    linked_to_delta_disks: bool = False,
    device_changes: Sequence[vim.vm.device.VirtualDeviceSpec] = (),
) -> vim.vm.CloneSpec:
    """A clone of ``template`` into ``placement``, linked to ``snapshot`` when one is given, or sharing the
    template's parent disks when ``linked_to_delta_disks`` (the template has a delta-disk layer).

    Powered on separately: a clone that fails to start should fail as a power-on, not as a clone.
    """
    moves = vim.vm.RelocateSpec.DiskMoveOptions
    # linked: the clone's disks are children of the snapshot's, made in seconds and sharing its blocks
    disk_move = moves.createNewChildDiskBacking if snapshot is not None else moves.moveAllDiskBackingsAndConsolidate
    if linked_to_delta_disks:
        # as the original: the clone copies only the template's child-most (delta) disks, sharing the rest
        disk_move = moves.moveChildMostDiskBacking
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
    config = vim.vm.ConfigSpec(
        annotation=json.dumps(annotation, indent=2), extraConfig=_options(marks), deviceChange=list(device_changes)
    )
    return vim.vm.CloneSpec(location=location, snapshot=snapshot, powerOn=False, template=False, config=config)


def network_card_spec(
    card: vim.vm.device.VirtualEthernetCard,
    network: vim.Network,
    network_name: str,
    port_group: tuple[str, str] | None,
) -> vim.vm.device.VirtualDeviceSpec:
    """An edit of ``card`` that connects it to ``network``; ``port_group`` = (switch uuid, port group key)
    for a distributed port group, whose cards are backed by a switch port rather than a network name."""
    if port_group is not None:
        switch_uuid, key = port_group
        backing: vim.vm.device.VirtualDevice.BackingInfo = (
            vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(switchUuid=switch_uuid, portgroupKey=key)
            )
        )
    else:
        backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=network_name, network=network, useAutoDetect=False
        )
    # the same card (key, type, MAC) on another network, connected at power-on as the original does
    card.backing = backing
    card.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, allowGuestControl=True, connected=True
    )
    return vim.vm.device.VirtualDeviceSpec(operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=card)


def vmx_options(cfg: VSpherePoolOptions) -> dict[str, str]:
    """The pool's own VMX settings for its clones (the original's memory-snapshot tuning)."""
    options = {}
    if cfg.snapshot_main_mem_io_block_pages is not None:
        options["mainMem.ioBlockPages"] = str(cfg.snapshot_main_mem_io_block_pages)
    if cfg.snapshot_main_mem_iowait is not None:
        options["mainMem.iowait"] = str(cfg.snapshot_main_mem_iowait)
    return options


def delta_disk_spec(
    devices: Sequence[vim.vm.device.VirtualDevice], datastores: dict[vim.Datastore, str]
) -> vim.vm.ConfigSpec:
    """A new delta-disk layer on every disk (the original's ``add_delta_disk_layer_on_all_disks``), marked on the VM.

    Each disk is replaced by a child whose parent is the old disk, so clones moving only the child-most
    disks (``linked_to_delta_disks``) share the parents; ``datastores`` names each disk's datastore.
    """
    changes = []
    for disk in (d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)):
        old: Any = disk.backing  # a disk's backing: FlatVer2 (or another file backing) with a datastore
        child = vim.vm.device.VirtualDisk(
            key=disk.key,
            controllerKey=disk.controllerKey,
            unitNumber=disk.unitNumber,
            capacityInKB=disk.capacityInKB,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName=f"[{datastores.get(old.datastore, '')}]",
                datastore=old.datastore,
                diskMode=old.diskMode,
                thinProvisioned=getattr(old, "thinProvisioned", None),
                parent=old,
            ),
        )
        operation = vim.vm.device.VirtualDeviceSpec.Operation
        changes.append(vim.vm.device.VirtualDeviceSpec(operation=operation.remove, device=disk))
        changes.append(
            vim.vm.device.VirtualDeviceSpec(
                operation=operation.add,
                fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create,
                device=child,
            )
        )
    return vim.vm.ConfigSpec(deviceChange=changes, extraConfig=_options({DELTA_DISKS_KEY: "true"}))


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

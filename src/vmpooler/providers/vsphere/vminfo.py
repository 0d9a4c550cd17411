"""Turns a VM's vCenter properties into the VMInfo the manager sees; ``INFO_PATHS`` are the ones it reads."""

from __future__ import annotations

from pyVmomi import vim

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.providers.vsphere.connection import Content
from vmpooler.providers.vsphere.inventory import Props, retrieve, snapshot_tree
from vmpooler.providers.vsphere.specs import TEMPLATE_KEY, USER_KEY, datastore_of, option

__all__ = ["INFO_PATHS", "POWERED_ON", "host_name", "vm_info"]

INFO_PATHS = [
    "name",
    "runtime.powerState",
    "runtime.bootTime",
    "runtime.host",
    "guest.ipAddress",
    "guest.hostName",
    "snapshot",
    "config.files.vmPathName",
    "config.extraConfig",
]
POWERED_ON = vim.VirtualMachine.PowerState.poweredOn


def host_name(content: Content, vm: Props) -> str | None:
    """Blocking: the name of the host the VM runs on."""
    host = vm.get("runtime.host")
    if host is None:
        return None
    found = retrieve(content, [host], vim.HostSystem, ["name"])
    return found[0].get("name") if found else None


def vm_info(pool: PoolTarget, vm: Props, host: str | None) -> VMInfo:
    extra_config = vm.get("config.extraConfig")
    boot = vm.get("runtime.bootTime")
    return VMInfo(
        name=vm["name"],
        pool=pool.name,
        template=option(extra_config, TEMPLATE_KEY) or pool.template,
        hostname=vm.get("guest.hostName") or None,
        ip=vm.get("guest.ipAddress") or None,
        powered_on=vm.get("runtime.powerState") == POWERED_ON,
        boot_time=boot.timestamp() if boot is not None else None,
        host=host,
        extra={
            "power_state": str(vm.get("runtime.powerState", "")),
            "snapshots": [node.name for node in snapshot_tree(vm.get("snapshot"))],
            "user": option(extra_config, USER_KEY),
            "datastore": datastore_of(vm.get("config.files.vmPathName")),
        },
    )

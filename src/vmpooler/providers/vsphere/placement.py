"""Chooses the host a clone runs on: the least used usable host of the pool's clone target.

A host is usable when it is connected, not in maintenance mode, not shown red by vCenter, and
neither its CPU nor its memory is more used than the limit (90% by default, as in the original).
Of the usable hosts the one with the fewest VMs wins, counting clones this provider is still
making there (vCenter lists a VM on its host only once the clone finishes, and its usage
statistics lag by tens of seconds, so without them a burst of clones would all pick the same
host); CPU + memory use breaks a tie, then the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyVmomi import vim

from vmpooler.providers.vsphere.connection import Content
from vmpooler.providers.vsphere.inventory import Props, retrieve

__all__ = ["HostLoad", "host_loads", "least_used"]

_MIB = 1024 * 1024

_HOST_PATHS = [
    "name",
    "vm",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "overallStatus",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.overallMemoryUsage",
    "summary.hardware.cpuMhz",
    "summary.hardware.numCpuCores",
    "summary.hardware.memorySize",
]


@dataclass(frozen=True)
class HostLoad:
    ref: vim.HostSystem
    name: str
    vms: int
    cpu_percent: float
    memory_percent: float
    connected: bool
    in_maintenance: bool
    failing: bool  # vCenter shows the host red

    def usable(self, limit: float) -> bool:
        busy = max(self.cpu_percent, self.memory_percent) > limit
        return self.connected and not self.in_maintenance and not self.failing and not busy


def host_loads(content: Content, hosts: list[vim.HostSystem]) -> list[HostLoad]:
    """Blocking: how loaded each host is, in one query."""
    return [_load(props) for props in retrieve(content, hosts, vim.HostSystem, _HOST_PATHS)]


def least_used(loads: list[HostLoad], in_flight: Mapping[str, int], limit: float) -> HostLoad | None:
    """The usable host to clone onto next, or None when no host is usable.

    ``in_flight`` counts the clones still being made per host name; ``limit`` is the busiest (CPU or
    memory percent) a host may be.
    """
    usable = [load for load in loads if load.usable(limit)]
    if not usable:
        return None
    return min(
        usable,
        key=lambda load: (
            load.vms + in_flight.get(load.name, 0),
            load.cpu_percent + load.memory_percent,
            load.name,
        ),
    )


def _load(props: Props) -> HostLoad:
    cpu_capacity = props.get("summary.hardware.cpuMhz", 0) * props.get("summary.hardware.numCpuCores", 0)
    memory_capacity = props.get("summary.hardware.memorySize", 0) / _MIB
    return HostLoad(
        ref=props["obj"],
        name=props["name"],
        vms=len(props.get("vm", [])),
        cpu_percent=_percent(props.get("summary.quickStats.overallCpuUsage", 0), cpu_capacity),
        memory_percent=_percent(props.get("summary.quickStats.overallMemoryUsage", 0), memory_capacity),
        connected=props.get("runtime.connectionState") == "connected",
        in_maintenance=bool(props.get("runtime.inMaintenanceMode", False)),
        failing=props.get("overallStatus") == "red",
    )


def _percent(used: float, capacity: float) -> float:
    return 100.0 * used / capacity if capacity > 0 else 0.0

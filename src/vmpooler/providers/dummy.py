"""A simulated hypervisor for development, demos and fault injection.

The dummy provider keeps an inventory, ``pool -> VM name -> record``, and acts on it the way a
hypervisor acts on machines: a clone takes time and may fail half-way, leaving a powered-off VM
behind that someone must clean up; a VM boots ``ready_delay`` seconds after its clone finishes; a
destroy may fail. Each fault is switched on by a ``<call>_fail_percent`` option and each call is
slowed by ``<call>_max_time``, as in the original vmpooler's dummy provider.

With ``filename`` the inventory lives in files shared by every process naming it (a snapshot and an
append-only journal, each change one line under a file lock: dummy_inventory.py), so several managers
(or one killed with ``kill -9`` and restarted) see one consistent inventory and a VM outlives the
process that made it. Without ``filename`` the inventory lives in memory and dies with the provider.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import zlib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field

from vmpooler.domain import PoolTarget, VMInfo
from vmpooler.errors import PermanentProviderError, ProviderError
from vmpooler.providers.base import Provider, ProviderOptions
from vmpooler.providers.dummy_inventory import Inventory, InventoryStore, Record
from vmpooler.providers.dummy_listeners import Health, Listeners

__all__ = ["DummyOptions", "DummyProvider", "VMStatus"]

T = TypeVar("T")
Seconds = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]


class DummyOptions(ProviderOptions):
    """The ``:providers: <name>:`` section of a dummy provider; every key is optional.

    Times are seconds: a call slowed by ``<call>_max_time`` sleeps a uniform random time in
    ``[0, max]``. ``<call>_fail_percent`` (0-100) is the chance the call raises an injected
    ``ProviderError``. ``seed`` makes every random choice reproducible.
    """

    #: a JSON file holding the inventory, shared by every process naming it (none: in memory); a relative
    #: one is under the state folder (--state-dir), and its folder is made when missing
    filename: str | None = None
    path_options = ("filename",)
    #: the templates this simulated hypervisor has; cloning any other fails permanently, as a
    #: real one does. None: every template exists
    templates: list[str] | None = None
    #: accepted for compatibility with the original; ``vm_ready`` never blocks here
    is_ready_timeout: Seconds = 5
    ready_delay: Seconds = 2.0
    createvm_max_time: Seconds = 0
    #: set (> 0): a clone takes a lognormal time of this mean and ``createvm_sd_time`` standard
    #: deviation instead (the distribution `vmpooler simulate` draws, for replays that compare with it)
    createvm_mean_time: Seconds = 0
    createvm_sd_time: Seconds = 0
    createvm_fail_percent: Percent = 0
    createdisk_max_time: Seconds = 0
    createdisk_fail_percent: Percent = 0
    createsnapshot_max_time: Seconds = 0
    createsnapshot_fail_percent: Percent = 0
    revertsnapshot_max_time: Seconds = 0
    revertsnapshot_fail_percent: Percent = 0
    destroyvm_max_shutdown_time: Seconds = 0
    destroyvm_max_time: Seconds = 0
    destroyvm_fail_percent: Percent = 0
    #: accepted for compatibility; this interface has no migration call yet
    migratevm_max_time: Seconds = 0
    migratevm_fail_percent: Percent = 0
    migratevm_couldmove_percent: Percent = 0
    #: a VM's suspend (memory saved, no CPU) and resume, for a pool's suspended tier
    suspendvm_max_time: Seconds = 0
    suspendvm_fail_percent: Percent = 0
    resumevm_max_time: Seconds = 0
    resumevm_fail_percent: Percent = 0
    getvm_poweroff_percent: Percent = 0
    getvm_rename_percent: Percent = 0
    vmready_fail_percent: Percent = 0
    #: run a loopback listener per running VM (its address becomes ``127.0.0.1:<port>``), which answers
    #: an ``ssh``, ``http`` or ``tcp`` hand-out check (dummy_listeners.py); off: VMs get an unreachable address
    listen: bool = False
    #: with ``listen``: the chance a VM dies silently once ready (its listener closes; the provider still
    #: reports it running and ready, as a hung guest looks to a hypervisor)
    ready_die_percent: Percent = 0
    #: with ``listen``: the chance a VM's port accepts connections but its service never answers
    port_without_service_percent: Percent = 0
    seed: int | None = None


class VMStatus(StrEnum):
    """Where a dummy VM's clone stands; shown as ``VMInfo.extra["status"]``."""

    CLONING = "cloning"
    FAILED = "failed"  # the injected clone failure left it behind
    RUNNING = "running"
    SUSPENDED = "suspended"  # its memory saved: not ready until resumed


class DummyProvider(Provider):
    """A provider whose VMs are records in an inventory; see the module docstring."""

    options_model = DummyOptions
    options: DummyOptions

    def __init__(self, name: str, options: ProviderOptions | None = None) -> None:
        super().__init__(name, options)
        options = self.options
        self._random = random.Random(options.seed)
        if options.filename:
            Path(options.filename).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._inventory = InventoryStore(Path(options.filename).expanduser() if options.filename else None)
        self._listeners = Listeners()
        #: VMs (of this process's listeners) that die silently the first time they are found ready
        self._doomed: set[str] = set()

    async def vms_in_pool(self, pool: PoolTarget) -> list[str]:
        return await self._inventory.names(pool.name)

    async def get_vm(self, pool: PoolTarget, name: str) -> VMInfo | None:
        power_off = self._roll(self.options.getvm_poweroff_percent)
        rename = self._roll(self.options.getvm_rename_percent)
        if not (power_off or rename):
            record = await self._inventory.record(pool.name, name)
            return _info(pool.name, name, record) if record else None

        def look(inventory: Inventory) -> VMInfo | None:
            record = inventory.get(pool.name, {}).get(name)
            if record is None:
                return None
            if power_off:
                record["powered_on"] = False
            if rename and record["hostname"] == name:
                record["hostname"] = f"DUMMY{name}"
            return _info(pool.name, name, record)

        return await self._inventory.update(pool.name, name, look)

    async def create_vm(self, pool: PoolTarget, name: str) -> VMInfo:
        if self.options.templates is not None and pool.template not in self.options.templates:
            raise PermanentProviderError(
                f"dummy: pool {pool.name!r}: template {pool.template!r} not found "
                f"(templates: {', '.join(self.options.templates) or 'none'})"
            )

        def start_clone(inventory: Inventory) -> None:
            vms = inventory.setdefault(pool.name, {})
            if name in vms:
                raise ProviderError(f"dummy: VM {name!r} already exists in pool {pool.name!r}")
            vms[name] = {
                "template": pool.template,
                "hostname": None,
                "ip": None,
                "created": time.time(),
                "booted": None,
                "powered_on": False,
                "status": VMStatus.CLONING,
                "snapshots": [],
                "disks": [],
                "tags": {},
            }

        address = await self._listen(name)

        def power_on(record: Record) -> VMInfo:
            record.update(hostname=name, ip=address, powered_on=True, booted=time.time(), status=VMStatus.RUNNING)
            return _info(pool.name, name, record)

        await self._inventory.update(pool.name, name, start_clone)
        try:
            await self._lognormal_delay(self.options.createvm_mean_time, self.options.createvm_sd_time)
            await self._simulate("createvm", f"cloning {name!r}")
        except ProviderError:
            # The half-made VM stays, as a failed clone can on a real hypervisor.
            await self._set_if_present(pool, name, status=VMStatus.FAILED)
            raise
        return await self._change_vm(pool, name, power_on)

    async def destroy_vm(self, pool: PoolTarget, name: str) -> None:
        record = await self._inventory.record(pool.name, name)
        if record is None:
            return
        self._listeners.close(name)
        self._doomed.discard(name)
        if record["powered_on"]:
            await self._delay(self.options.destroyvm_max_shutdown_time)
            await self._set_if_present(pool, name, powered_on=False)
        await self._simulate("destroyvm", f"destroying {name!r}")

        def remove(inventory: Inventory) -> None:
            vms = inventory.get(pool.name, {})
            vms.pop(name, None)
            if not vms:
                inventory.pop(pool.name, None)

        await self._inventory.update(pool.name, name, remove)

    async def vm_ready(self, pool: PoolTarget, name: str) -> bool:
        record = await self._inventory.record(pool.name, name)
        if record is None or not record["powered_on"] or record["status"] != VMStatus.RUNNING:
            return False
        if time.time() - record["booted"] < self.options.ready_delay:
            return False
        if self._roll(self.options.vmready_fail_percent):
            return False
        if name in self._doomed:
            # dies silently: the hypervisor still sees it running, only its services are gone
            self._doomed.discard(name)
            self._listeners.close(name)
        return True

    async def suspend_vm(self, pool: PoolTarget, name: str) -> None:
        await self._simulate("suspendvm", f"suspending {name!r}")

        def suspend(record: Record) -> None:
            if record["status"] not in (VMStatus.RUNNING, VMStatus.SUSPENDED):
                raise PermanentProviderError(f"dummy: VM {name!r} is {record['status']}, not running: cannot suspend")
            record["status"] = VMStatus.SUSPENDED

        await self._change_vm(pool, name, suspend)

    async def resume_vm(self, pool: PoolTarget, name: str) -> None:
        await self._simulate("resumevm", f"resuming {name!r}")

        def resume(record: Record) -> None:
            if record["status"] not in (VMStatus.RUNNING, VMStatus.SUSPENDED):
                raise PermanentProviderError(f"dummy: VM {name!r} is {record['status']}, not suspended: cannot resume")
            record["status"] = VMStatus.RUNNING

        await self._change_vm(pool, name, resume)

    async def create_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        await self._simulate("createsnapshot", f"snapshotting {name!r}")

        def take(record: Record) -> None:
            record["snapshots"].append(snapshot)
            record["current_snapshot"] = snapshot

        await self._change_vm(pool, name, take)

    async def revert_snapshot(self, pool: PoolTarget, name: str, snapshot: str) -> None:
        await self._simulate("revertsnapshot", f"reverting {name!r}")

        def revert(record: Record) -> None:
            if snapshot not in record["snapshots"]:
                raise PermanentProviderError(f"dummy: VM {name!r} has no snapshot {snapshot!r}")
            record["current_snapshot"] = snapshot

        await self._change_vm(pool, name, revert)

    async def create_disk(self, pool: PoolTarget, name: str, size_gb: int) -> None:
        if size_gb < 1:
            raise PermanentProviderError(f"dummy: disk size must be at least 1 GB, not {size_gb}")
        await self._simulate("createdisk", f"adding a disk to {name!r}")
        await self._change_vm(pool, name, lambda record: record["disks"].append(size_gb))

    async def tag_vm_user(self, pool: PoolTarget, name: str, user: str) -> None:
        await self._change_vm(pool, name, lambda record: record["tags"].update(user=user))

    def all_vms(self) -> dict[str, list[str]]:
        """Pool name -> names of its VMs, read now (blocking; for tests and the CLI)."""
        return {pool: sorted(vms) for pool, vms in sorted(self._inventory.snapshot().items())}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "filename": self.options.filename}

    async def close(self) -> None:
        self._listeners.close_all()

    async def _listen(self, name: str) -> str:
        """The address a powered-on VM is reached at: its own listener's with ``listen``."""
        if not self.options.listen:
            return _fake_ip(name)
        mute = self._roll(self.options.port_without_service_percent)
        if self._roll(self.options.ready_die_percent):
            self._doomed.add(name)
        port = await self._listeners.open(name, Health.MUTE if mute else Health.HEALTHY)
        return f"{self._listeners.host}:{port}"

    async def _change_vm(self, pool: PoolTarget, name: str, change: Callable[[Record], T]) -> T:
        """Apply ``change`` to the VM's record; PermanentProviderError when there is no such VM."""

        def apply(inventory: Inventory) -> T:
            record = inventory.get(pool.name, {}).get(name)
            if record is None:
                raise PermanentProviderError(f"dummy: no VM {name!r} in pool {pool.name!r}")
            return change(record)

        return await self._inventory.update(pool.name, name, apply)

    async def _set_if_present(self, pool: PoolTarget, name: str, **fields: Any) -> None:
        """Update the VM's record unless another caller has destroyed it meanwhile."""
        await self._inventory.update(
            pool.name, name, lambda inventory: inventory.get(pool.name, {}).get(name, {}).update(fields)
        )

    def _roll(self, percent: float) -> bool:
        """True with a chance of ``percent`` in 100."""
        return percent > 0 and self._random.random() * 100 < percent

    async def _delay(self, max_time: float) -> None:
        if max_time > 0:
            await asyncio.sleep(self._random.uniform(0, max_time))

    async def _lognormal_delay(self, mean: float, sd: float) -> None:
        if mean <= 0:
            return
        sigma2 = math.log(1 + (sd / mean) ** 2)
        await asyncio.sleep(self._random.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2)))

    async def _simulate(self, call: str, doing: str) -> None:
        """Sleep per ``<call>_max_time``, then fail per ``<call>_fail_percent``."""
        await self._delay(getattr(self.options, f"{call}_max_time"))
        percent: float = getattr(self.options, f"{call}_fail_percent")
        if self._roll(percent):
            raise ProviderError(f"dummy: injected fault ({call}_fail_percent={percent:g}) while {doing}")


def _fake_ip(name: str) -> str:
    """A stable address from the documentation range (RFC 5737), derived from the name."""
    return f"192.0.2.{zlib.crc32(name.encode()) % 254 + 1}"


def _info(pool: str, name: str, record: Record) -> VMInfo:
    return VMInfo(
        name=name,
        pool=pool,
        template=record["template"],
        hostname=record["hostname"],
        ip=record["ip"],
        powered_on=record["powered_on"],
        boot_time=record["booted"],
        host="dummy-host-1",
        extra={
            "status": str(record["status"]),
            "created": record["created"],
            "snapshots": list(record["snapshots"]),
            "disks": list(record["disks"]),
            "tags": dict(record["tags"]),
        },
    )

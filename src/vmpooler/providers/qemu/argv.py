"""The ``qemu-system-x86_64`` command line of one VM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vmpooler.providers.localvm.accel import Accelerator
from vmpooler.providers.localvm.options import Machine
from vmpooler.providers.localvm.records import VMFiles, VMRecord


@dataclass(frozen=True)
class Host:
    """What the command line needs from the provider's options rather than from the pool."""

    binary: str
    machine_type: str
    listen_address: str
    extra_args: tuple[str, ...] = ()


def command_line(
    host: Host,
    machine: Machine,
    record: VMRecord,
    files: VMFiles,
    accel: Accelerator,
    devices: tuple[str, ...] = (),
    incoming: str | None = None,
) -> list[str]:
    """Every argument, ending with ``-daemonize``: the VM outlives the manager that started it.

    ``devices`` are more arguments (a restorable VM's agent channel); ``incoming`` starts the VM from a
    saved memory state (``-incoming``) instead of booting it.

    The QMP socket is named relative to the VM's directory (the launch runs there) because a socket
    path may not exceed 107 bytes and a state directory can be deep.
    """
    name = record.name
    argv = [host.binary, "-name", f"{name},debug-threads=on", "-uuid", record.uid]
    argv += ["-machine", f"{host.machine_type},accel={accel}", "-m", str(machine.memory_mb)]
    argv += ["-smp", str(machine.cpus)]
    if accel == "kvm":
        argv += ["-cpu", "host"]
    argv += ["-nodefaults", "-no-user-config", "-display", "none"]
    argv += ["-chardev", f"file,id=console,path={_value(files.serial)}", "-serial", "chardev:console"]
    argv += [
        "-drive",
        f"file={_value(files.overlay)},if=none,id=root,format=qcow2",
        "-device",
        "virtio-blk-pci,drive=root",
    ]
    argv += ["-netdev", _netdev(host, machine, record), "-device", f"virtio-net-pci,netdev=net0,mac={record.mac}"]
    # the guest learns its name from the kernel command line, SMBIOS or fw_cfg, whichever it reads
    argv += ["-smbios", f"type=1,serial={name}", "-fw_cfg", f"name=opt/vmpooler/hostname,string={name}"]
    if machine.kernel is not None:
        argv += ["-kernel", str(machine.kernel.absolute())]
        if machine.initrd is not None:
            argv += ["-initrd", str(machine.initrd.absolute())]
        argv += ["-append", f"{machine.append} vmpooler.hostname={name}".strip()]
    argv += [*host.extra_args, *devices]
    if incoming is not None:
        argv += ["-incoming", incoming]
    argv += ["-qmp", f"unix:{files.qmp.name},server=on,wait=off", "-pidfile", str(files.pidfile), "-daemonize"]
    return argv


def _netdev(host: Host, machine: Machine, record: VMRecord) -> str:
    if machine.network == "bridge":
        return f"bridge,id=net0,br={machine.bridge}"
    return f"user,id=net0,hostfwd=tcp:{host.listen_address}:{record.port}-:{machine.guest_port}"


def _value(path: Path) -> str:
    """A path as one value of a QEMU option list, where a comma ends the value unless doubled."""
    return str(path.absolute()).replace(",", ",,")

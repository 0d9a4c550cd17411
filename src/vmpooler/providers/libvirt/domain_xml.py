"""The libvirt XML of a pool's VM, of the disks added to it and of its snapshots, and what a domain's XML tells back.

A VM is a domain named after it with a ``<metadata>`` element in our namespace naming its pool,
template, creation time, network, MAC address and forwarded port, so the domains are the inventory.

User-mode networking with a forwarded port is passed to QEMU with ``<qemu:commandline>``
(``-netdev user,hostfwd=...`` and a virtio NIC): libvirt's own ``<interface type='user'>`` forwards
ports only through passt, which Debian 12's libvirt 9.0 is built without. The NIC gets a fixed PCI
slot near the top of the root bus (``NIC_SLOTS``) because libvirt does not know it exists: it hands
out slots from the bottom, and neither its own devices nor a disk hot-plugged later may take the NIC's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vmpooler.errors import PermanentProviderError
from vmpooler.providers.localvm.options import Machine

NAMESPACE = "https://github.com/puppetlabs/vmpooler/xmlns/libvirt/1"
METADATA_PREFIX = "vmpooler"
QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
#: where the user-mode NIC goes on each machine family's root bus (q35 has its LPC bridge in 0x1f)
NIC_SLOTS = {"i440fx": "bus=pci.0,addr=0x1f", "q35": "bus=pcie.0,addr=0x1e"}
NETDEV_ID = "vmpooler-net0"
ROOT_TARGET = "vda"

DomainType = Literal["qemu", "kvm"]

# without these, ElementTree writes ns0:/ns1: prefixes, which libvirt keeps and shows in `virsh dumpxml`
ET.register_namespace(METADATA_PREFIX, NAMESPACE)
ET.register_namespace("qemu", QEMU_NAMESPACE)


@dataclass(frozen=True)
class DomainSpec:
    """Everything one VM's domain is made of."""

    name: str
    uuid: str
    pool: str
    template: Path
    overlay: Path
    console: Path
    machine: Machine
    domain_type: DomainType
    machine_type: str
    mac: str
    created: float
    #: the host port forwarded to the guest (user networking only) and the address it listens on
    port: int | None = None
    listen_address: str = "127.0.0.1"
    emulator: str | None = None


@dataclass(frozen=True)
class DomainFacts:
    """What a pool's domain says about itself (from its XML)."""

    name: str
    uuid: str
    active: bool
    domain_type: str
    pool: str
    template: str
    created: float | None
    network: str
    mac: str | None
    port: int | None
    console: str | None
    #: target device (``vda``) -> image file, for every disk
    disks: dict[str, str] = field(default_factory=dict)


def domain_xml(spec: DomainSpec) -> str:
    machine = spec.machine
    domain = ET.Element("domain", type=spec.domain_type)
    _text(domain, "name", spec.name)
    _text(domain, "uuid", spec.uuid)
    ET.SubElement(ET.SubElement(domain, "metadata"), _ours("vm"), _metadata(spec))
    _text(domain, "memory", str(machine.memory_mb), unit="MiB")
    _text(domain, "vcpu", str(machine.cpus))
    # the guest can learn its name from SMBIOS and fw_cfg too, as under the qemu provider
    _text(ET.SubElement(ET.SubElement(domain, "sysinfo", type="smbios"), "system"), "entry", spec.name, name="serial")
    _text(ET.SubElement(domain, "sysinfo", type="fwcfg"), "entry", spec.name, name="opt/vmpooler/hostname")
    os_ = ET.SubElement(domain, "os")
    _text(os_, "type", "hvm", arch="x86_64", machine=spec.machine_type)
    if machine.kernel is not None:
        _text(os_, "kernel", str(machine.kernel.absolute()))
        if machine.initrd is not None:
            _text(os_, "initrd", str(machine.initrd.absolute()))
        _text(os_, "cmdline", f"{machine.append} vmpooler.hostname={spec.name}".strip())
    else:
        ET.SubElement(os_, "boot", dev="hd")
    ET.SubElement(os_, "smbios", mode="sysinfo")
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")  # without ACPI the PCI bus takes no hot-plugged disks
    ET.SubElement(features, "apic")
    if spec.domain_type == "kvm":
        ET.SubElement(domain, "cpu", mode="host-passthrough")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        _text(domain, event, action)
    devices = ET.SubElement(domain, "devices")
    if spec.emulator:
        _text(devices, "emulator", spec.emulator)
    devices.append(_disk(spec.overlay, ROOT_TARGET))
    if machine.network == "bridge":
        interface = ET.SubElement(devices, "interface", type="bridge")
        ET.SubElement(interface, "mac", address=spec.mac)
        ET.SubElement(interface, "source", bridge=machine.bridge)
        ET.SubElement(interface, "model", type="virtio")
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(spec.console))
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    if machine.network == "user":
        forward = f"tcp:{spec.listen_address}:{spec.port}-:{machine.guest_port}"
        nic = f"virtio-net-pci,netdev={NETDEV_ID},mac={spec.mac},{_nic_slot(spec.machine_type)}"
        commandline = ET.SubElement(domain, _qemu("commandline"))
        for value in ("-netdev", f"user,id={NETDEV_ID},hostfwd={forward}", "-device", nic):
            ET.SubElement(commandline, _qemu("arg"), value=value)
    return ET.tostring(domain, encoding="unicode")


def disk_xml(image: Path, target: str) -> str:
    return ET.tostring(_disk(image, target), encoding="unicode")


def snapshot_xml(name: str) -> str:
    """A snapshot of the running guest: memory, devices and every disk, inside the qcow2 images."""
    snapshot = ET.Element("domainsnapshot")
    _text(snapshot, "name", name)
    return ET.tostring(snapshot, encoding="unicode")


def next_target(used: set[str]) -> str:
    """The first virtio disk name (``vdb``, ``vdc``, ...) not in ``used``."""
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise PermanentProviderError("every virtio disk name vdb-vdz is taken")


def pool_in_metadata(element: str) -> str | None:
    """The pool named by our metadata element as ``virDomain.metadata`` returns it."""
    # XML from our own libvirtd, not from users (bandit B314)
    return ET.fromstring(element).get("pool")  # nosec B314


def facts_of(xml: str) -> DomainFacts | None:
    """What the domain XML says, or None when it carries no metadata of ours (not a pool's VM)."""
    # XML from our own libvirtd, not from users (bandit B314)
    domain = ET.fromstring(xml)  # nosec B314
    ours = domain.find(f"metadata/{_ours('vm')}")
    if ours is None or not ours.get("pool"):
        return None
    disks = {}
    for disk in domain.iterfind("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None and source is not None and source.get("file"):
            disks[target.get("dev", "")] = source.get("file", "")
    console = domain.find("devices/serial/source")
    created, port = ours.get("created"), ours.get("port")
    return DomainFacts(
        name=domain.findtext("name", ""),
        uuid=domain.findtext("uuid", ""),
        active=domain.get("id", "-1") != "-1",  # libvirt gives a running domain an id
        domain_type=domain.get("type", ""),
        pool=ours.get("pool", ""),
        template=ours.get("template", ""),
        created=float(created) if created else None,
        network=ours.get("network", ""),
        mac=ours.get("mac"),
        port=int(port) if port else None,
        console=console.get("path") if console is not None else None,
        disks=disks,
    )


def _metadata(spec: DomainSpec) -> dict[str, str]:
    values = {
        "pool": spec.pool,
        "template": str(spec.template),
        "created": f"{spec.created:.3f}",
        "network": spec.machine.network,
        "mac": spec.mac,
    }
    if spec.port is not None:
        values["port"] = str(spec.port)
    return values


def _nic_slot(machine_type: str) -> str:
    return NIC_SLOTS["q35" if "q35" in machine_type else "i440fx"]


def _disk(image: Path, target: str) -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=str(image))
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    return disk


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _ours(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _qemu(tag: str) -> str:
    return f"{{{QEMU_NAMESPACE}}}{tag}"

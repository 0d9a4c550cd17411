"""Blocking work on the domains of pools, each a function of an open connection for ``Connection.run``.

A domain that vanished between two calls (``VIR_ERR_NO_DOMAIN``) is an answer, not an error: None
from a lookup, success from a removal.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt  # type: ignore[import-untyped,unused-ignore]

from vmpooler.providers.libvirt import faults
from vmpooler.providers.libvirt.domain_xml import NAMESPACE, DomainFacts, facts_of, pool_in_metadata

#: undefine also drops what libvirt keeps beside the definition; the images themselves are ours to delete
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
)
_NOT_OURS = frozenset({libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_DOMAIN_METADATA})


def pool_domains(conn: Any, pool: str) -> list[str]:
    """Names of the domains whose metadata names ``pool``, running or not."""
    names = []
    for domain in conn.listAllDomains(0):
        try:
            element = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE, 0)
        except faults.LibvirtError as exc:
            if faults.code_of(exc) in _NOT_OURS:  # not a pool's VM, or undefined since the listing
                continue
            raise
        if pool_in_metadata(element) == pool:
            names.append(str(domain.name()))
    return names


def facts(conn: Any, name: str) -> DomainFacts | None:
    """What the domain ``name`` says about itself; None when there is none or it is not a pool's VM."""
    try:
        xml = conn.lookupByName(name).XMLDesc(0)
    except faults.LibvirtError as exc:
        if faults.is_no_domain(exc):
            return None
        raise
    return facts_of(str(xml))


def define(conn: Any, xml: str) -> None:
    """Define the domain persistently, so that it outlives the manager and the daemon's restarts.

    The XML carries a UUID of its own: a name already in use fails instead of redefining that domain.
    """
    conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)


def start(conn: Any, name: str) -> None:
    """Start the domain unless it runs already (so a start repeated after a lost connection succeeds)."""
    domain = conn.lookupByName(name)
    if not domain.isActive():
        domain.create()


def remove(conn: Any, uuid: str) -> None:
    """Power the domain off at once and undefine it; a domain already gone is success."""
    try:
        domain = conn.lookupByUUIDString(uuid)
        try:
            domain.destroy()
        except faults.LibvirtError as exc:
            if faults.code_of(exc) != libvirt.VIR_ERR_OPERATION_INVALID:  # "domain is not running": stopped already
                raise
        domain.undefineFlags(UNDEFINE_FLAGS)
    except faults.LibvirtError as exc:
        if not faults.is_no_domain(exc):  # a transient domain vanishes as it stops: also gone
            raise


def snapshot(conn: Any, name: str, xml: str) -> None:
    conn.lookupByName(name).snapshotCreateXML(xml, 0)


def revert(conn: Any, name: str, snapshot_name: str) -> None:
    domain = conn.lookupByName(name)
    domain.revertToSnapshot(domain.snapshotLookupByName(snapshot_name, 0), 0)


def attach_disk(conn: Any, name: str, xml: str) -> None:
    """Plug the disk into the running guest and into the definition, so that a restart keeps it."""
    domain = conn.lookupByName(name)
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if domain.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    domain.attachDeviceFlags(xml, flags)


def address_of(conn: Any, name: str, mac: str) -> str | None:
    """The IPv4 address the hypervisor host has seen ``mac`` use (a bridged guest), from its neighbour table."""
    try:
        interfaces = conn.lookupByName(name).interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP, 0)
    except faults.LibvirtError as exc:
        if faults.is_no_domain(exc) or faults.code_of(exc) == libvirt.VIR_ERR_OPERATION_INVALID:
            return None  # gone, or not running
        raise
    for interface in (interfaces or {}).values():
        if str(interface.get("hwaddr", "")).lower() != mac.lower():
            continue
        for address in interface.get("addrs") or []:
            if address.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                return str(address["addr"])
    return None


def check_machine(conn: Any, emulator: str | None, machine_type: str, domain_type: str) -> None:
    """Ask the daemon whether it can run such a machine; libvirt's refusal names what it lacks.

    Defining a domain of an unknown machine type fails with a message that does not name it
    (``No PCI buses available``); this one does.
    """
    conn.getDomainCapabilities(emulator, "x86_64", machine_type, domain_type, 0)


def offers_kvm(conn: Any) -> bool:
    """True when the daemon's host can run x86_64 guests under KVM (its capabilities list the domain type)."""
    # the daemon's own reply (bandit B314)
    capabilities = ET.fromstring(conn.getCapabilities())  # nosec B314
    return capabilities.find("guest/arch[@name='x86_64']/domain[@type='kvm']") is not None

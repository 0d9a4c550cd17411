"""A VM's network identity: its MAC address, and its address on a bridge as the host's neighbour table shows it."""

from __future__ import annotations

import hashlib
from pathlib import Path

ARP_TABLE = Path("/proc/net/arp")
ARP_COMPLETE = 0x2


def mac_for(uid: str) -> str:
    """A stable, locally administered MAC in QEMU's 52:54:00 range, derived from the VM's unique id."""
    digest = hashlib.sha256(uid.encode()).digest()
    return "52:54:00:" + ":".join(f"{byte:02x}" for byte in digest[:3])


def address_of(mac: str, table: Path = ARP_TABLE) -> str | None:
    """The IPv4 address the host has seen ``mac`` use (a bridged guest), or None (blocking, tiny read)."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[3].lower() == mac.lower() and int(fields[2], 16) & ARP_COMPLETE:
            return fields[0]
    return None

"""The original vmpooler's dummy inventory file, read and written, so both simulate one hypervisor.

With the same ``filename`` the original's dummy provider keeps its VMs as YAML,
``{"pool": {<pool>: [{"name", "hostname", "template": <pool>, "vm_template", "ready", "powerstate",
"dummy_state", "boottime", "snapshots", "disks", ...}]}}``. A file in that form is read as this
provider's inventory and written back in it (as JSON, which is YAML the original can load: no Ruby
``Time`` values, which its own loader refuses), so one may stop the original and start this service
on the same file, or go back, and find the same VMs. Keys either side does not know are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: the keys of ours that the original has no place for, kept in each of its VM entries under this key
OURS = "vmpooler_python"
KEPT = ("ip", "created", "booted", "tags", "current_snapshot")


def is_original(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("pool"), dict) and "pools" not in document


def from_original(document: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The original's document as this provider's inventory: pool -> VM name -> record."""
    inventory: dict[str, dict[str, dict[str, Any]]] = {}
    for pool, entries in (document.get("pool") or {}).items():
        vms = inventory.setdefault(str(pool), {})
        for entry in entries or []:
            if isinstance(entry, dict) and entry.get("name"):
                vms[str(entry["name"])] = _record(entry)
    return inventory


def to_original(inventory: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """This provider's inventory in the original's form."""
    return {
        "pool": {pool: [_entry(pool, name, record) for name, record in vms.items()] for pool, vms in inventory.items()}
    }


def _record(entry: dict[str, Any]) -> dict[str, Any]:
    found = entry.get(OURS)
    ours: dict[str, Any] = found if isinstance(found, dict) else {}
    booted = _seconds(entry.get("boottime"))
    running = entry.get("dummy_state") == "RUNNING" or bool(entry.get("ready"))
    record: dict[str, Any] = {
        "template": entry.get("vm_template") or entry.get("template"),
        "hostname": entry.get("hostname") or entry["name"],
        "ip": None,
        "created": booted,
        # a VM the original found ready counts as booted long ago: it is ready here at once
        "booted": 0.0 if entry.get("ready") else booted,
        "powered_on": entry.get("powerstate", "PoweredOn") == "PoweredOn",
        "status": "running" if running else "cloning",
        "snapshots": list(entry.get("snapshots") or []),
        "disks": list(entry.get("disks") or []),
        "tags": {},
        "original": {k: v for k, v in entry.items() if k != OURS and not isinstance(v, datetime)},
    }
    # what only we track comes back from our key; the state the original changes stays its own
    record.update({key: ours[key] for key in KEPT if key in ours})
    return record


def _entry(pool: str, name: str, record: dict[str, Any]) -> dict[str, Any]:
    running = record.get("status") == "running"
    kept = {key: record[key] for key in KEPT if key in record}
    return {
        "vm_host": "HOST1",
        "domain": "dummy.local",
        **(record.get("original") or {}),
        "name": name,
        "hostname": record.get("hostname") or name,
        "template": pool,
        "vm_template": record.get("template"),
        "poolname": pool,
        "ready": running and bool(record.get("powered_on")),
        "powerstate": "PoweredOn" if record.get("powered_on") else "PoweredOff",
        "dummy_state": "RUNNING" if running else "CLONING",
        "snapshots": list(record.get("snapshots") or []),
        "disks": list(record.get("disks") or []),
        OURS: kept,
    }


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace(" +", "+")).timestamp()
        except ValueError:
            return 0.0
    return 0.0

"""Every Redis key name vmpooler uses, in the original vmpooler's layout (reference §4).

Operators' ``redis-cli`` habits and data written by the Ruby vmpooler keep working: a VM's
state is the set ``vmpooler__<state>__<pool>`` it is a member of, its record the hash
``vmpooler__vm__<name>``. Keys marked *ours* are additions the original does not have.
"""

from __future__ import annotations

from datetime import date

from vmpooler.states import VMState

PREFIX = "vmpooler__"

POOLS = f"{PREFIX}pools"
LASTBOOT = f"{PREFIX}lastboot"
CONFIG_POOLSIZE = f"{PREFIX}config__poolsize"
CONFIG_TEMPLATE = f"{PREFIX}config__template"
CONFIG_CLONE_TARGET = f"{PREFIX}config__clone_target"
TEMPLATE_PREPARED = f"{PREFIX}template__prepared"
POOLRESET = f"{PREFIX}poolreset"
#: ours: in-flight clones as a zset member -> lease expiry, so a crashed manager's slots expire
#: (the original's ``vmpooler__tasks__clone`` counter leaks a slot per crash)
CLONE_SLOTS = f"{PREFIX}tasks__clone_slots"
VM_PREFIX = f"{PREFIX}vm__"


def state_set(state: VMState, pool: str) -> str:
    return f"{PREFIX}{state.value}__{pool}"


def ready_queue(pool: str) -> str:
    """Ours: FIFO of ready VM names, so checkout hands out the oldest in O(1)."""
    return f"{PREFIX}readyqueue__{pool}"


def vm(name: str) -> str:
    return f"{VM_PREFIX}{name}"


def pool(name: str) -> str:
    return f"{PREFIX}pool__{name}"


def active(pool: str) -> str:
    return f"{PREFIX}active__{pool}"


def empty_flag(pool: str) -> str:
    return f"{PREFIX}empty__{pool}"


def clone_times(day: date) -> str:
    return f"{PREFIX}clone__{day.isoformat()}"


def boot_times(day: date) -> str:
    return f"{PREFIX}boot__{day.isoformat()}"


def tags(day: date) -> str:
    return f"{PREFIX}tag__{day.isoformat()}"


def token(value: str) -> str:
    return f"{PREFIX}token__{value}"

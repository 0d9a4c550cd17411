"""The VM lifecycle: the one table of allowed state transitions.

Every VM is in exactly one state. In Redis each live state is one set per pool
(``vmpooler__<state>__<pool>``), so a VM's state is the set it is in; DESTROYED is the absence
of any set (its hash lingers for ``data_ttl`` as a record).

    (clone) ──> PENDING ──> READY ──> RUNNING ──> COMPLETED ──> DESTROYED
                   │           │                      ^
                   └──> FAILED ┘(ready check fails)   │
                          │          READY ───────────┘ (ttl, excess, template change)
                          └──────────────────────────────────> DESTROYED
    (provider has it, Redis does not) ──> DISCOVERED ──> COMPLETED

    READY ──> RUNNING ──> QUARANTINE ──> COMPLETED   (failed its hand-out check; kept for debugging)
                 │  ^          │
                 │  └ READY <──┘ (released by an operator after a passing check)
                 └──> READY       (a checkout that could not complete gives back the VMs it had checked)

    PENDING ──> SUSPENDED ──> READY       (the suspended tier: booted, then its RAM saved and no CPU held;
                    │                      resumed when the ready VMs fall short; docs/fast-clones.md)
                    └──> COMPLETED / FAILED (beyond the tier, drained, vanished / its resume failed)
"""

from __future__ import annotations

from enum import StrEnum

from vmpooler.errors import IllegalTransition


class VMState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DISCOVERED = "discovered"
    DESTROYED = "destroyed"
    #: failed its hand-out check: out of circulation, kept ``quarantine_hours`` for debugging
    QUARANTINE = "quarantine"
    #: booted then suspended (RAM saved to disk, no CPU): resumed into READY when the ready VMs fall short
    SUSPENDED = "suspended"


#: States that are a Redis set per pool; DESTROYED is not held anywhere.
LIVE_STATES: tuple[VMState, ...] = (
    VMState.PENDING,
    VMState.READY,
    VMState.RUNNING,
    VMState.COMPLETED,
    VMState.FAILED,
    VMState.DISCOVERED,
    VMState.QUARANTINE,
    VMState.SUSPENDED,
)

#: States whose VMs the manager destroys.
DOOMED_STATES: tuple[VMState, ...] = (VMState.COMPLETED, VMState.FAILED)

ALLOWED: dict[VMState, frozenset[VMState]] = {
    VMState.PENDING: frozenset({VMState.READY, VMState.FAILED, VMState.RUNNING, VMState.SUSPENDED}),
    VMState.READY: frozenset({VMState.RUNNING, VMState.COMPLETED, VMState.FAILED}),
    # QUARANTINE and READY only in the hand-out check's step of a checkout (api/services/handout.py)
    VMState.RUNNING: frozenset({VMState.COMPLETED, VMState.QUARANTINE, VMState.READY}),
    VMState.COMPLETED: frozenset({VMState.DESTROYED}),
    VMState.FAILED: frozenset({VMState.DESTROYED}),
    VMState.DISCOVERED: frozenset({VMState.COMPLETED}),
    VMState.QUARANTINE: frozenset({VMState.READY, VMState.COMPLETED}),
    # only the manager's suspended tier (manager/suspended.py) moves VMs in and out of SUSPENDED
    VMState.SUSPENDED: frozenset({VMState.READY, VMState.COMPLETED, VMState.FAILED}),
    VMState.DESTROYED: frozenset(),
}


def can_move(source: VMState, target: VMState) -> bool:
    return target in ALLOWED[source]


def check_move(source: VMState, target: VMState) -> None:
    """Raise IllegalTransition unless the table allows ``source -> target``."""
    if not can_move(source, target):
        raise IllegalTransition(f"a VM may not move from {source} to {target}")

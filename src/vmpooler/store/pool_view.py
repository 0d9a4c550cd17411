"""Everything one manager pass needs to know about a pool from Redis, read in one call (a Lua script)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from redis.commands.core import AsyncScript

from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.connection import translated
from vmpooler.store.overrides import HASHES
from vmpooler.store.records import VMField, VMRecord

#: the VM record fields the manager's checks of pending VMs read
CHECK_FIELDS = (VMField.CLONE, VMField.CLONE_OWNER)
CHECKED_STATES = (VMState.PENDING,)
_STATE_ORDER = CHECKED_STATES + tuple(s for s in LIVE_STATES if s not in CHECKED_STATES)
#: the most VMs of each kind (expired, due a check, lifetime over) one pass is handed; the rest wait
#: for the next pass, which comes soon since this one changed something
DUE_PER_PASS = 500


@dataclass(frozen=True, slots=True)
class Due:
    """The pool's ready and running VMs whose deadline has come, from the deadline index."""

    #: ready longer than the pool's ready_ttl
    expired: list[str] = field(default_factory=list)
    #: ready, and last checked at least check_interval ago
    check: list[str] = field(default_factory=list)
    #: running past the end of their lifetime (as indexed: the record has the last word)
    lifetime: list[str] = field(default_factory=list)
    #: when the next VM not yet due will be (epoch seconds; inf when none)
    next_at: float = math.inf


@dataclass(frozen=True, slots=True)
class PoolView:
    members: dict[VMState, set[str]]
    #: override kind (size, template, clone_target) -> value, for those set through the API
    overrides: dict[str, str]
    #: the template and clone target the pool's VMs were made from; None before the first pass
    prepared: tuple[str | None, str | None]
    reset_requested: bool
    #: VMs open on-demand requests still wait for from this pool
    demand: int
    #: name -> its record's CHECK_FIELDS, for every pending VM
    records: dict[str, VMRecord] = field(default_factory=dict)
    due: Due = field(default_factory=Due)
    #: the deadline index holds as many entries as the ready and running sets (else: reindex)
    indexed: bool = True

    def count(self, state: VMState) -> int:
        return len(self.members[state])


async def read_pool_view(
    script: AsyncScript, pool: str, now: float, ready_ttl: float, check_interval: float
) -> PoolView:
    script_keys = [keys.state_set(state, pool) for state in _STATE_ORDER]
    script_keys += [*HASHES.values(), keys.TEMPLATE_PREPARED, keys.CLONE_TARGET_PREPARED]
    script_keys += [keys.POOLRESET, keys.ONDEMAND_DEMAND]
    script_keys += [keys.ready_since(pool), keys.checked_at(pool), keys.lifetime_ends(pool)]
    script_keys += [keys.state_set(VMState.READY, pool), keys.state_set(VMState.RUNNING, pool)]
    expired_by, checks_by = now - ready_ttl, now - check_interval
    args: list[str | int | float] = [
        pool, keys.VM_PREFIX, len(_STATE_ORDER), len(CHECKED_STATES), repr(expired_by), repr(checks_by), repr(now),
        DUE_PER_PASS, *CHECK_FIELDS,
    ]  # fmt: skip
    async with translated():
        reply = await script(keys=script_keys, args=args)
    width = len(_STATE_ORDER)
    members = {state: set(reply[i]) for i, state in enumerate(_STATE_ORDER)}
    overrides, prepared, reset, demand, found, due, upcoming, consistent = reply[width:]
    checked = [name for i in range(len(CHECKED_STATES)) for name in reply[i]]
    since, last_check, ends = (float(v) if v else math.inf for v in upcoming)
    return PoolView(
        members=members,
        overrides={kind: str(v) for kind, v in zip(HASHES, overrides, strict=True) if v is not None},
        prepared=(prepared[0], prepared[1]),
        reset_requested=bool(reset),
        demand=int(demand or 0),
        records={
            name: VMRecord.from_hash({f: v for f, v in zip(CHECK_FIELDS, values, strict=True) if v is not None})
            for name, values in zip(checked, found, strict=True)
        },
        due=Due(due[0], due[1], due[2], _next_at(now, due, min(since + ready_ttl, last_check + check_interval, ends))),
        indexed=bool(consistent),
    )


def _next_at(now: float, due: list[list[str]], upcoming: float) -> float:
    """When the next VM comes due: now, when a list was cut at DUE_PER_PASS (more are due already)."""
    return now if any(len(names) >= DUE_PER_PASS for names in due) else upcoming

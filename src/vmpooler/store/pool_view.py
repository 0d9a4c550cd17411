"""Everything one manager pass needs to know about a pool from Redis, read in one call (a Lua script)."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.commands.core import AsyncScript

from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.connection import translated
from vmpooler.store.overrides import HASHES

#: the VM record fields the manager's checks read, for the VMs in these states
CHECK_FIELDS = ("checkout", "lifetime", "ready", "check", "clone", "clone_owner")
CHECKED_STATES = (VMState.RUNNING, VMState.READY, VMState.PENDING)
_STATE_ORDER = CHECKED_STATES + tuple(s for s in LIVE_STATES if s not in CHECKED_STATES)


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
    #: name -> the CHECK_FIELDS its record has, for every running, ready and pending VM
    records: dict[str, dict[str, str]] = field(default_factory=dict)

    def count(self, state: VMState) -> int:
        return len(self.members[state])


async def read_pool_view(script: AsyncScript, pool: str) -> PoolView:
    script_keys = [keys.state_set(state, pool) for state in _STATE_ORDER]
    script_keys += [*HASHES.values(), keys.TEMPLATE_PREPARED, keys.CLONE_TARGET_PREPARED]
    script_keys += [keys.POOLRESET, keys.ONDEMAND_DEMAND]
    args: list[str | int] = [pool, keys.VM_PREFIX, len(_STATE_ORDER), len(CHECKED_STATES), *CHECK_FIELDS]
    async with translated():
        reply = await script(keys=script_keys, args=args)
    width = len(_STATE_ORDER)
    members = {state: set(reply[i]) for i, state in enumerate(_STATE_ORDER)}
    overrides, prepared, reset, demand, found = reply[width:]
    checked = [name for i in range(len(CHECKED_STATES)) for name in reply[i]]
    return PoolView(
        members=members,
        overrides={kind: str(v) for kind, v in zip(HASHES, overrides, strict=True) if v is not None},
        prepared=(prepared[0], prepared[1]),
        reset_requested=bool(reset),
        demand=int(demand or 0),
        records={
            name: {f: v for f, v in zip(CHECK_FIELDS, values, strict=True) if v is not None}
            for name, values in zip(checked, found, strict=True)
        },
    )

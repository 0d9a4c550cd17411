"""Everything one manager pass needs to know about a pool from Redis, read in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.overrides import HASHES

#: the VM record fields the manager's checks read (HMGET of these, not HGETALL of whole records)
CHECK_FIELDS = ("checkout", "lifetime", "ready", "check", "clone", "clone_owner")


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

    def count(self, state: VMState) -> int:
        return len(self.members[state])


async def read_pool_view(client: Redis, pool: str) -> PoolView:
    async with translated(), client.pipeline(transaction=False) as pipe:
        for state in LIVE_STATES:
            pipe.smembers(keys.state_set(state, pool))
        for key in HASHES.values():
            pipe.hget(key, pool)
        pipe.hget(keys.TEMPLATE_PREPARED, pool)
        pipe.hget(keys.CLONE_TARGET_PREPARED, pool)
        pipe.sismember(keys.POOLRESET, pool)
        pipe.hget(keys.ONDEMAND_DEMAND, pool)
        replies = await pipe.execute()
    width = len(LIVE_STATES)
    members = {state: {str(n) for n in names} for state, names in zip(LIVE_STATES, replies[:width], strict=True)}
    overrides = {
        kind: str(v) for kind, v in zip(HASHES, replies[width : width + len(HASHES)], strict=True) if v is not None
    }
    template, target, reset, demand = replies[width + len(HASHES) :]
    return PoolView(
        members=members,
        overrides=overrides,
        prepared=(None if template is None else str(template), None if target is None else str(target)),
        reset_requested=bool(reset),
        demand=int(demand) if demand else 0,
    )


async def read_check_fields(client: Redis, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """name -> the CHECK_FIELDS its record has, for many VMs in one round trip."""
    if not names:
        return {}
    async with translated(), client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(keys.vm(name), CHECK_FIELDS)
        replies = await pipe.execute()
    return {
        name: {f: str(v) for f, v in zip(CHECK_FIELDS, values, strict=True) if v is not None}
        for name, values in zip(names, replies, strict=True)
    }

"""The manager's deadline index: per pool, when each ready VM became ready and last passed its check,
and when each running VM's lifetime ends, as sorted sets, so a pass reads only the VMs that are due.

The state scripts (move.lua, checkout.lua) keep the index in step with the state sets atomically. VMs
written before the index existed, or by the original vmpooler sharing the Redis, are indexed by
``reindex`` when a pool's index and state sets disagree in size; an entry whose VM has left its state
is dropped by pool_view.lua when it comes due.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.records import VMField, VMRecord, format_time


def zset_score(value: float) -> str:
    """A zset score as Redis reads it (``+inf`` for never)."""
    return "+inf" if value == math.inf else repr(value)


def deadline_keys(pool: str) -> list[str]:
    """The ready queue and the deadline index a state move keeps in step (move.lua's KEYS[5..8])."""
    return [keys.ready_queue(pool), keys.ready_since(pool), keys.checked_at(pool), keys.lifetime_ends(pool)]


#: what the index is built from
_INDEXED_FIELDS = [VMField.READY, VMField.CHECK, VMField.CHECKOUT, VMField.LIFETIME]


class DeadlineStore:
    def __init__(self, client: Redis, set_lifetime_script: AsyncScript) -> None:
        self.client = client
        self._set_lifetime = set_lifetime_script

    async def set_lifetime(self, pool: str, name: str, hours: int, ends: float) -> None:
        """Record a VM's new lifetime and, if it runs, when it now ends; its manager is told."""
        async with translated():
            await self._set_lifetime(
                keys=[keys.vm(name), keys.state_set(VMState.RUNNING, pool), keys.lifetime_ends(pool)],
                args=[name, str(hours), zset_score(ends), keys.EVENTS, pool],
            )

    async def passed_checks(self, pool: str, names: Sequence[str], now: float) -> None:
        """Ready VMs that answered their check: next due one check interval from ``now`` (a VM that
        left ready meanwhile is not put back: ZADD XX)."""
        if not names:
            return
        stamp = format_time(now)
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.hset(keys.vm(name), VMField.CHECK, stamp)
            pipe.zadd(keys.checked_at(pool), dict.fromkeys(names, now), xx=True)
            await pipe.execute()

    async def reschedule(self, pool: str, ends: Mapping[str, float]) -> None:
        """Correct when running VMs' lifetimes end (their records said otherwise than the index)."""
        if ends:
            async with translated():
                await self.client.zadd(keys.lifetime_ends(pool), {n: zset_score(e) for n, e in ends.items()}, xx=True)

    async def reindex(self, pool: str, lifetime_hours: float, *, rewrite: bool) -> int:
        """Bring the pool's index in line with its ready and running sets, from the VM records: add the
        VMs it lacks, drop those no longer there, and with ``rewrite`` recompute every lifetime's end
        (this manager's ``vm_lifetime`` may differ from the one they were checked out under).
        O(VMs in the pool): run once at start and when the sizes disagree. Returns entries written."""
        ready_key, check_key, ends_key = keys.ready_since(pool), keys.checked_at(pool), keys.lifetime_ends(pool)
        async with translated():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.smembers(keys.state_set(VMState.READY, pool))
                pipe.smembers(keys.state_set(VMState.RUNNING, pool))
                for key in (ready_key, check_key, ends_key):
                    pipe.zrange(key, 0, -1)
                ready, running, *indexed = [{str(n) for n in found} for found in await pipe.execute()]
            since, checked, ends = indexed
            names = sorted(ready) + sorted(running)
            async with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hmget(keys.vm(name), _INDEXED_FIELDS)
                found = await pipe.execute()
            records = {
                name: VMRecord.from_hash({f: v for f, v in zip(_INDEXED_FIELDS, values, strict=True) if v})
                for name, values in zip(names, found, strict=True)
            }
            writes = 0
            async with self.client.pipeline(transaction=True) as pipe:
                writes += _drop(pipe, ready_key, since - ready)
                writes += _drop(pipe, check_key, checked - ready)
                writes += _drop(pipe, ends_key, ends - running)
                # no ready time (written by hand?): its ready_ttl counts from now, as the old pass skipped it
                became = {n: records[n].ready or time.time() for n in ready - since}
                last_check = {n: records[n].check or records[n].ready or 0.0 for n in ready - checked}
                lifetimes = {
                    n: zset_score(records[n].lifetime_end(lifetime_hours))
                    for n in (running if rewrite else running - ends)
                }
                for key, entries, only_new in (
                    (ready_key, became, True),
                    (check_key, last_check, True),
                    (ends_key, lifetimes, False),
                ):
                    if entries:
                        # a VM indexed by its move meanwhile keeps that entry; a rewrite replaces ends
                        pipe.zadd(key, entries, nx=only_new)
                        writes += len(entries)
                await pipe.execute()
        return writes


def _drop(pipe: Pipeline, key: str, names: Iterable[str]) -> int:
    gone = list(names)
    if gone:
        pipe.zrem(key, *gone)
    return len(gone)

"""Hand-out checks in Redis: a checkout undone VM by VM, the checks' counts, and the quarantined VMs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmpooler.states import VMState, check_move
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import EventLog, at_field, event_data
from vmpooler.store.records import VMField, VMRecord, format_time
from vmpooler.store.scripts import load

#: the record fields a checkout writes (store.redis.Store.checkout), removed when it is undone
CHECKOUT_FIELDS = (VMField.CHECKOUT, VMField.TOKEN, VMField.USER, VMField.LIFETIME)
#: read for a check: where the VM is reached, and when it last passed
_TARGET_FIELDS = (VMField.IP, VMField.HANDOUT_PASSED)


@dataclass(frozen=True, slots=True)
class Quarantined:
    pool: str
    name: str
    since: float | None
    reason: str


def _minute(now: float) -> int:
    return int(now // 60)


class HandoutStore:
    def __init__(self, client: Redis, eventlog: EventLog) -> None:
        self.client = client
        self.eventlog = eventlog
        self._undo = load(client, "handout_undo")

    async def targets(self, names: Sequence[str]) -> list[tuple[str, float | None]]:
        """Each VM's recorded address (``ip``: an address or ``host:port``) and when it last passed."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(keys.vm(name), *_TARGET_FIELDS)
            found = await pipe.execute()
        records = [
            VMRecord.from_hash({str(f): str(v) for f, v in zip(_TARGET_FIELDS, values, strict=True) if v is not None})
            for values in found
        ]
        return [(record.ip or "", record.handout_passed) for record in records]

    async def record(self, outcomes: Mapping[str, tuple[int, int]], passed: Sequence[str], now: float) -> None:
        """Count each pool's checks and failures (pool -> (checks, failures)) and stamp the VMs that passed."""
        minute = _minute(now)
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool, (checks, failures) in outcomes.items():
                pipe.hincrby(keys.handout_stats(pool), f"checks:{minute}", checks)
                if failures:
                    pipe.hincrby(keys.handout_stats(pool), f"failures:{minute}", failures)
            for name in passed:
                pipe.hset(keys.vm(name), VMField.HANDOUT_PASSED, repr(now))
            await pipe.execute()

    async def undo(
        self, pool: str, name: str, target: VMState, now: float, *, reason: str = "", token_id: str | None = None
    ) -> bool:
        """RUNNING -> ``target`` (QUARANTINE or READY) for a VM whose checkout reply has not gone out;
        False when it was not running."""
        check_move(VMState.RUNNING, target)
        index = [keys.token_vms(token_id)] if token_id else []
        ready_since = now
        async with translated():
            if target is VMState.READY:
                # back in the deadline index at the time it first became ready: ready_ttl still counts
                ready = await self.client.hget(keys.vm(name), VMField.READY)
                ready_since = VMRecord.from_hash({VMField.READY: str(ready)} if ready else {}).ready or now
            event = "vm.quarantined" if target is VMState.QUARANTINE else "vm.ready"
            why = reason or "its checkout could not be completed: given back before the reply"
            done = await self._undo(
                keys=[
                    keys.state_set(VMState.RUNNING, pool),
                    keys.state_set(target, pool),
                    keys.vm(name),
                    keys.active(pool),
                    keys.lifetime_ends(pool),
                    keys.ready_queue(pool),
                    keys.ready_since(pool),
                    keys.checked_at(pool),
                    keys.handout_stats(pool),
                    keys.EVENT_STREAM,
                    *index,
                ],
                args=[
                    name,
                    target.value,
                    repr(now),
                    format_time(now),
                    reason,
                    repr(ready_since),
                    pool,
                    event,
                    at_field(now),
                    event_data(**{"from": VMState.RUNNING.value, "reason": why}),
                    self.eventlog.max_length,
                    *(str(field) for field in CHECKOUT_FIELDS),
                ],
            )
        return bool(done)

    async def failure_rate(self, pool: str, since: float, now: float) -> tuple[int, int]:
        """(checks, failures) of the pool from ``since`` to ``now``, by whole minutes; older counts are dropped."""
        first, last = _minute(since), _minute(now)
        async with translated():
            raw = await self.client.hgetall(keys.handout_stats(pool))
        checks = failures = 0
        stale = []
        for field, value in raw.items():
            kind, _, minute = str(field).partition(":")
            if not minute.isdigit():
                continue
            if int(minute) < first:
                stale.append(str(field))
            elif int(minute) <= last:
                checks += int(value) if kind == "checks" else 0
                failures += int(value) if kind == "failures" else 0
        if stale:
            async with translated():
                await self.client.hdel(keys.handout_stats(pool), *stale)
        return checks, failures

    async def quarantined_total(self, pools: Sequence[str]) -> dict[str, int]:
        """How many VMs of each pool were ever quarantined."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.hget(keys.handout_stats(pool), "quarantined")
            found = await pipe.execute()
        return {pool: int(value or 0) for pool, value in zip(pools, found, strict=True)}

    async def quarantined(self, pools: Sequence[str]) -> list[Quarantined]:
        """Every quarantined VM of ``pools``, oldest first."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.smembers(keys.state_set(VMState.QUARANTINE, pool))
            members = await pipe.execute()
            names = [(pool, str(name)) for pool, found in zip(pools, members, strict=True) for name in sorted(found)]
            for _, name in names:
                pipe.hmget(keys.vm(name), VMField.QUARANTINED, VMField.QUARANTINE_REASON)
            found = await pipe.execute() if names else []
        fields = (VMField.QUARANTINED, VMField.QUARANTINE_REASON)
        records = [
            VMRecord.from_hash({str(f): str(v) for f, v in zip(fields, values, strict=True) if v is not None})
            for values in found
        ]
        out = [
            Quarantined(pool, name, record.quarantined, record.quarantine_reason or "")
            for (pool, name), record in zip(names, records, strict=True)
        ]
        return sorted(out, key=lambda q: (q.since if q.since is not None else -math.inf, q.name))

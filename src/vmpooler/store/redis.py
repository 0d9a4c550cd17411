"""The Redis store: every read and atomic write of pools and VM records the service makes."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from redis.exceptions import NoScriptError

from vmpooler.errors import LeaseLost
from vmpooler.states import LIVE_STATES, VMState, check_move
from vmpooler.store import keys
from vmpooler.store.audit_trail import AuditTrail
from vmpooler.store.checkout_call import checkout_call
from vmpooler.store.connection import Redis, translated
from vmpooler.store.deadlines import DeadlineStore, deadline_keys, zset_score
from vmpooler.store.eventlog import DEFAULT_MAX_LENGTH, EventLog, at_field, event_data, transition_event
from vmpooler.store.events import EventStore
from vmpooler.store.handout import HandoutStore
from vmpooler.store.health import HealthStore
from vmpooler.store.history import HistoryStore
from vmpooler.store.leases import LeaseStore
from vmpooler.store.managers import ManagerStore
from vmpooler.store.ondemand import OndemandStore
from vmpooler.store.overrides import OverrideStore
from vmpooler.store.pool_view import PoolView, read_pool_view
from vmpooler.store.ratelimit import RateLimitStore
from vmpooler.store.records import VMField, VMRecord, format_time
from vmpooler.store.replies import Fields, flat_pairs, str_dict, str_mapping, str_set
from vmpooler.store.scripts import Scripts, queue, settle
from vmpooler.store.slots import SlotStore
from vmpooler.store.stats import StatsStore
from vmpooler.store.tasks import TaskStore
from vmpooler.store.tokens import TokenStore
from vmpooler.store.waiting import CheckoutVia, WaitQueues

#: hours a checked-out VM lives when the caller names no lifetime (``vm_lifetime``'s default)
DEFAULT_LIFETIME_HOURS = 24.0


class Store:
    """Pools, VM records and their state sets in Redis. Each state change is one Lua script."""

    def __init__(
        self,
        client: Redis,
        *,
        data_ttl_hours: int = 168,
        events_max_length: int = DEFAULT_MAX_LENGTH,
        audit_max_length: int = 1_000_000,
    ) -> None:
        self.client = client
        self.data_ttl_seconds = data_ttl_hours * 3600
        self._scripts = Scripts.register(client)
        #: the event stream every change below writes to, in the change's own script or MULTI
        self.eventlog = EventLog(client, self._scripts.expiring, events_max_length)
        self.audit_trail = AuditTrail(client, audit_max_length)
        self.tokens = TokenStore(client, self.eventlog)
        self.overrides = OverrideStore(client, self.eventlog)
        self.tasks = TaskStore(client)
        self.ondemand = OndemandStore(client)
        self.stats = StatsStore(client)
        self.history = HistoryStore(client)
        self.ratelimit = RateLimitStore(client)
        self.health = HealthStore(client, self.eventlog)
        self.handout = HandoutStore(client, self.eventlog)
        self.leases = LeaseStore(client)
        self.managers = ManagerStore(client)
        self.events = EventStore(client)
        self.queues = WaitQueues(client, events_max_length)
        self.slots = SlotStore(client, self._scripts.clone_slot, self.managers_alive)
        self.deadlines = DeadlineStore(client, self._scripts.set_lifetime)

    async def ping(self) -> bool:
        async with translated():
            return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose(close_connection_pool=True)

    # ---- pools -----------------------------------------------------------------------------

    async def register_pools(self, pools: Mapping[str, Fields]) -> None:
        """Publish the configured pools (name -> hash fields). Records of other pools are left alone:
        an operator may keep pools in Redis for processes started without ``:pools:`` (as the original)."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            for name, fields in pools.items():
                pipe.sadd(keys.POOLS, name)
                pipe.delete(keys.pool(name))
                if fields:
                    pipe.hset(keys.pool(name), mapping=str_mapping(fields))
            await pipe.execute()

    async def stored_pools(self) -> dict[str, dict[str, str]]:
        """Every pool published in Redis (``vmpooler__pools``), name -> its ``vmpooler__pool__<name>`` hash."""
        async with translated():
            names = sorted(str_set(await self.client.smembers(keys.POOLS)))
            async with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(keys.pool(name))
                found = await pipe.execute()
        return {name: str_dict(fields) for name, fields in zip(names, found, strict=True)}

    async def counts(self, pools: Sequence[str]) -> dict[str, dict[VMState, int]]:
        """Size of every live state set of every pool, in one round trip and one reply."""
        if not pools:
            return {}
        async with translated():
            prefixes = [keys.state_set_prefix(state) for state in LIVE_STATES]
            sizes = await self._scripts.counts(keys=[], args=[len(prefixes), *prefixes, *pools])
        width = len(LIVE_STATES)
        return {
            pool: dict(zip(LIVE_STATES, sizes[i * width : (i + 1) * width], strict=True))
            for i, pool in enumerate(pools)
        }

    async def members(self, pool: str, state: VMState) -> set[str]:
        async with translated():
            return str_set(await self.client.smembers(keys.state_set(state, pool)))

    async def members_of(self, pools: Sequence[str], state: VMState) -> dict[str, set[str]]:
        """One state's members for several pools, in one round trip."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.smembers(keys.state_set(state, pool))
            found = await pipe.execute()
        return {pool: str_set(names) for pool, names in zip(pools, found, strict=True)}

    async def all_members(self, pool: str) -> dict[VMState, set[str]]:
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for state in LIVE_STATES:
                pipe.smembers(keys.state_set(state, pool))
            found = await pipe.execute()
        return {state: set(names) for state, names in zip(LIVE_STATES, found, strict=True)}

    async def pool_view(self, pool: str, now: float, ready_ttl: float, check_interval: float) -> PoolView:
        """Members, overrides, drain triggers, demand, pending VMs' check fields, and the ready and
        running VMs due at ``now`` (past ``ready_ttl``, due a check, lifetime over), in one call."""
        return await read_pool_view(self._scripts.pool_view, pool, now, ready_ttl, check_interval)

    async def set_empty(self, pool: str, empty: bool) -> None:
        async with translated():
            if empty:
                await self.client.set(keys.empty_flag(pool), "true")
            else:
                await self.client.delete(keys.empty_flag(pool))

    async def lastboot(self) -> dict[str, str]:
        async with translated():
            return str_dict(await self.client.hgetall(keys.LASTBOOT))

    # ---- VM records ---------------------------------------------------------------------------

    async def vm(self, name: str) -> dict[str, str]:
        async with translated():
            return str_dict(await self.client.hgetall(keys.vm(name)))

    async def vms(self, names: Sequence[str]) -> list[dict[str, str]]:
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(keys.vm(name))
            return [dict(found) for found in await pipe.execute()]

    async def record(self, name: str) -> VMRecord:
        """A VM's record, typed (empty when the VM is unknown)."""
        return VMRecord.from_hash(await self.vm(name))

    async def records(self, names: Sequence[str]) -> list[VMRecord]:
        return [VMRecord.from_hash(found) for found in await self.vms(names)]

    async def update_vm(self, name: str, fields: Fields) -> None:
        async with translated():
            await self.client.hset(keys.vm(name), mapping=str_mapping(fields))

    async def locate(self, name: str) -> tuple[str, VMState] | None:
        """(pool, state) of a VM, DESTROYED when only its record is left; None when never known."""
        async with translated():
            found = await self.client.hget(keys.vm(name), VMField.POOL)
            if found is None:
                found = await self.client.hget(keys.vm(name), VMField.TEMPLATE)
            if found is None:
                return None
            pool = str(found)
            async with self.client.pipeline(transaction=False) as pipe:
                for state in LIVE_STATES:
                    pipe.sismember(keys.state_set(state, pool), name)
                membership = await pipe.execute()
        for state, member in zip(LIVE_STATES, membership, strict=True):
            if member:
                return pool, state
        return pool, VMState.DESTROYED

    # ---- lifecycle: every write that changes a VM's state ---------------------------------------

    async def create_pending(self, pool: str, name: str, fields: Fields, fence: str = "") -> bool:
        """Record a new pending VM; False when the name is already taken.

        ``fence`` is the caller's lease fencing value for the pool (empty when managers do not
        share pools); a stale one raises LeaseLost and records nothing.
        """
        record = VMRecord(pool=pool, template=pool).fields() | dict(fields)
        event = [pool, at_field(), "{}", str(self.eventlog.max_length)]
        async with translated():
            done = await self._scripts.create_pending(
                keys=[keys.state_set(VMState.PENDING, pool), keys.vm(name), keys.lease(pool), keys.EVENT_STREAM],
                args=[fence, name, *event, *flat_pairs(record)],
            )
        if done == -1:
            raise LeaseLost(f"pool {pool}: this manager's lease passed to another manager").with_context(
                pool=pool, vm=name
            )
        return bool(done)

    async def move(
        self,
        pool: str,
        name: str,
        source: VMState,
        target: VMState,
        fields: Fields | None = None,
        *,
        score: float | None = None,
        reason: str = "",
        notify: bool = False,
    ) -> bool:
        """Move ``name`` from ``source`` to ``target`` (a live state); False if it was no longer in
        ``source``. Raises IllegalTransition for a move the state table forbids. The move's event
        (eventlog.transition_event) is written with it, carrying ``reason``. With ``notify`` the
        pool's managers are told (``events.notify``) in the same round trip.

        The pool's deadline index moves with it: ``score`` is, for a READY target, when it became
        ready (default now); for a RUNNING target, when its lifetime ends (default never)."""
        check_move(source, target)
        if score is None:
            score = time.time() if target is VMState.READY else math.inf
        script_keys = [
            keys.state_set(source, pool),
            keys.state_set(target, pool),
            keys.vm(name),
            keys.active(pool),
            *deadline_keys(pool),
            keys.EVENT_STREAM,
        ]
        args = [
            name,
            source.value,
            target.value,
            zset_score(score),
            pool,
            transition_event(source, target),
            at_field(),
            event_data(**{"from": source.value, "reason": reason or None}),
            self.eventlog.max_length,
            *flat_pairs(fields),
        ]
        async with translated():
            if not notify:
                return bool(await self._scripts.move(keys=script_keys, args=args))
            async with self.client.pipeline(transaction=False) as pipe:
                queue(pipe, self._scripts.move, script_keys, args)
                pipe.publish(keys.EVENTS, pool)
                done, _ = await pipe.execute(raise_on_error=False)
            if isinstance(done, NoScriptError):  # Redis lost the script (a restart): load it, tell again
                done = await self._scripts.move(keys=script_keys, args=args)
                await self.events.notify([pool])
            elif isinstance(done, Exception):
                raise done
        return bool(done)

    async def mark_ready(
        self, pool: str, name: str, now: float, boot_seconds: float, fields: Fields | None = None
    ) -> bool:
        """PENDING -> READY (``fields`` written on the record too), queued for checkout, with the boot
        statistics the summary reports (together in one more round trip: a fill makes thousands)."""
        ready = {**VMRecord(ready=now).fields(), **(fields or {})}
        reason = f"booted in {boot_seconds:.1f}s"
        if not await self.move(pool, name, VMState.PENDING, VMState.READY, ready, score=now, reason=reason):
            return False
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            pipe.hset(keys.LASTBOOT, pool, format_time(now))
            self.history.queue_boot(pipe, pool, boot_seconds, now)
            fallback = self.stats.queue_record(pipe, "boot", pool, name, boot_seconds, now)
            self.queues.queue_wake(pipe, pool)  # a checkout waiting for this pool may be served now
            await settle(await pipe.execute(raise_on_error=False), {3: fallback})
        return True

    async def record_clone_time(
        self, pool: str, name: str, now: float, seconds: float, fields: Fields | None = None
    ) -> None:
        """A finished clone's statistics, and ``fields`` on its record, in one round trip."""
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(keys.vm(name), mapping=str_mapping(fields))
            self.history.queue_clone(pipe, pool, seconds, now)
            fallback = self.stats.queue_record(pipe, "clone", pool, name, seconds, now)
            replies = await pipe.execute(raise_on_error=False)
            await settle(replies, {len(replies) - 1: fallback})

    async def mark_destroyed(self, pool: str, name: str, source: VMState, now: float) -> bool:
        """COMPLETED/FAILED -> DESTROYED: the record stays ``data_ttl`` hours for queries."""
        check_move(source, VMState.DESTROYED)
        async with translated():
            done = await self._scripts.destroyed(
                keys=[keys.state_set(source, pool), keys.vm(name), keys.active(pool), keys.EVENT_STREAM],
                args=[
                    name,
                    format_time(now),
                    self.data_ttl_seconds,
                    pool,
                    at_field(now),
                    event_data(**{"from": source.value}),
                    self.eventlog.max_length,
                ],
            )
        return bool(done)

    async def discover(self, pool: str, names: Sequence[str]) -> list[str]:
        """Mark as DISCOVERED each of ``names`` that is in none of the pool's state sets."""
        if not names:
            return []
        others = [keys.state_set(s, pool) for s in LIVE_STATES if s is not VMState.DISCOVERED]
        async with translated():
            found = await self._scripts.discover(
                keys=[keys.EVENT_STREAM, keys.state_set(VMState.DISCOVERED, pool), *others],
                args=[pool, at_field(), self.eventlog.max_length, *names],
            )
        return list(found)

    async def checkout(
        self,
        requests: Sequence[Sequence[str]],
        now: float,
        fields: Fields | None = None,
        token_id: str | None = None,
        ondemand: tuple[str, str, str] | None = None,
        lifetime_hours: float = DEFAULT_LIFETIME_HOURS,
        *,
        index_sets: Sequence[str] = (),
        via: CheckoutVia | None = None,
    ) -> list[tuple[str, str]] | int:
        """Take one ready VM per request (each a list of candidate pools), all or nothing. In the
        same step the VMs are indexed under ``token_id``, under the on-demand request
        ``(request_id, alias, pool)`` they are delivered to, and by when their ``lifetime_hours``
        end (0: never), for the manager.

        Returns [(pool, name), ...] in request order, or the index of the first request that
        could not be served, in which case nothing was taken. ``index_sets`` are more sets every VM
        taken is added to; ``via`` is a script the checkout runs through (a quota check, a waiting
        request's turn: store/waiting.py), which raises its own error when it serves nothing.
        """
        check_move(VMState.READY, VMState.RUNNING)
        call = checkout_call(
            requests,
            now,
            fields,
            token_id=token_id,
            ondemand=ondemand,
            lifetime_hours=lifetime_hours,
            index_sets=index_sets,
            events_max_length=self.eventlog.max_length,
        )
        async with translated():
            if via is None:
                reply = await self._scripts.checkout(keys=call.keys, args=call.args)
            else:
                reply = await via.script(keys=[*via.keys, *call.keys], args=[*via.args, *call.args])
        if via is not None and int(reply[0]) < 0:
            raise via.refusal(list(reply))
        return call.taken(reply)

    # ---- managers: who is alive -------------------------------------------------------------

    # the manager heartbeats live in store/managers.py; these names are what callers have always used

    async def heartbeat(self, manager_id: str, description: str, ttl_seconds: int, now: float = 0.0) -> None:
        await self.managers.heartbeat(manager_id, description, ttl_seconds, now)

    async def retire(self, manager_id: str) -> None:
        await self.managers.retire(manager_id)

    async def live_managers(self, since: float) -> int:
        """How many managers sent a heartbeat after ``since`` (epoch seconds)."""
        return await self.managers.live_count(since)

    async def manager_descriptions(self) -> dict[str, str]:
        return await self.managers.descriptions()

    async def managers_alive(self, manager_ids: set[str]) -> set[str]:
        return await self.managers.alive(manager_ids)

    async def fingerprint(self, pool: str) -> tuple[object, ...]:
        """Cheap summary that changes when a pool needs the manager: checkouts, returns, overrides."""
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            pipe.scard(keys.state_set(VMState.READY, pool))
            pipe.scard(keys.state_set(VMState.RUNNING, pool))
            pipe.scard(keys.state_set(VMState.COMPLETED, pool))
            pipe.hget(keys.CONFIG_POOLSIZE, pool)
            pipe.hget(keys.CONFIG_TEMPLATE, pool)
            return tuple(await pipe.execute())

    async def tag_vm(self, name: str, tags: Mapping[str, str], now: float, max_tags: int = 1 << 30) -> int | None:
        """Store tags on the VM and in the day's tag summary, together, unless the VM would then carry
        more than ``max_tags``: then nothing is stored and the count it would have had is returned."""
        day = datetime.fromtimestamp(now, UTC).date()
        pairs = [str(item) for key, value in tags.items() for item in (key, value)]
        async with translated():
            refused = await self._scripts.tag_vm(keys=[keys.vm(name), keys.tags(day)], args=[max_tags, name, *pairs])
        return None if int(refused) < 0 else int(refused)

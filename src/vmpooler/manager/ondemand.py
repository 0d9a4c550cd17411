"""The on-demand provisioner: serves open requests from ready VMs and raises pool levels for the rest."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable

from vmpooler.config import Settings
from vmpooler.manager.cadence import every
from vmpooler.manager.wakeups import Wakeups, idle_sleep
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.events import ONDEMAND
from vmpooler.store.ondemand import Item, decode_items
from vmpooler.store.records import VMField, VMRecord, parse_time
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")

#: a finished request's record is kept this long for GET, as the original does for deleted ones
FINISHED_TTL_SECONDS = 15 * 24 * 3600
LOCK_SECONDS = 30.0
#: with no request open the provisioner passes this often (a new request wakes it at once): well
#: under LOCK_SECONDS, so an idle provisioner keeps its lock
IDLE_POLL_SECONDS = 10.0


class OndemandProvisioner:
    """Each pass, oldest request first: hand it ready VMs (each checkout atomic and all-or-nothing per
    VM), then publish how many more each pool must clone (the pool managers clone them); fail
    requests past ``ondemand_request_ttl``, past ``max_vm_retries`` clone failures, or on an error
    retrying cannot fix."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.owner = uuid.uuid4().hex
        #: the demand this provisioner last wrote, pool -> VMs
        self._demand: dict[str, int] = {}
        #: whether the last pass left requests open (then it passes each second: VMs become ready unannounced)
        self._open = True

    async def run_once(self) -> bool:
        """One pass; True when any request changed."""
        od = self.store.ondemand
        self._open = True
        if not await od.lock(self.owner, LOCK_SECONDS):
            self._open = False
            self._demand = {}  # another manager provisions; if this one takes over, it tells every pool
            return False
        changed = False
        for request_id in await od.claim_new():
            record = await od.get(request_id) or {}
            pools = [pool for _, pool, _ in decode_items(record.get("requested", ""))]
            baseline = await od.clone_failures(pools)
            await od.update(request_id, {f"failures:{p}": str(n) for p, n in baseline.items()})
            changed = True
        demand: Counter[str] = Counter()
        still_open = False
        for request_id in await od.open_requests():
            changed |= await self._serve(request_id, demand)
            still_open = True
        limit = self.settings.config.ondemand_clone_limit
        capped: dict[str, int] = {}
        for pool, missing in demand.items():
            capped[pool] = min(missing, max(0, limit - sum(capped.values())))
        wanted = {p: n for p, n in capped.items() if n > 0}
        await od.set_demand(wanted)
        # a settled pool's manager reads nothing of it until told (manager/quiet.py): tell the pools
        # whose demand moved (all of them once, when this manager takes the lock over)
        moved = sorted(p for p in set(wanted) | set(self._demand) if wanted.get(p) != self._demand.get(p))
        await self.store.events.notify(moved)
        self._demand = wanted
        self._open = still_open
        return changed

    async def _serve(self, request_id: str, demand: Counter[str]) -> bool:
        od = self.store.ondemand
        record = await od.get(request_id)
        if record is None or record.get("status"):
            await od.close(request_id, record.get("status", "failed") if record else "failed", {}, FINISHED_TTL_SECONDS)
            return True
        items = decode_items(record.get("requested", ""))
        created = parse_time(record.get("created")) or self.clock()
        cfg = self.settings.config
        if self.clock() - created > cfg.ondemand_request_ttl * 60:
            await self.fail(
                request_id, items, f"not provisioned within ondemand_request_ttl ({cfg.ondemand_request_ttl} min)"
            )
            return True
        failures = await od.clone_failures([pool for _, pool, _ in items])
        for _, pool, _ in items:
            error = await od.permanent_error(pool)
            if error:
                await self.fail(request_id, items, f"pool {pool!r} cannot clone: {error}")
                return True
            if failures[pool] - int(record.get(f"failures:{pool}", "0")) > cfg.max_vm_retries:
                await self.fail(
                    request_id, items, f"more than max_vm_retries ({cfg.max_vm_retries}) clones failed in {pool!r}"
                )
                return True
        complete = True
        changed = False
        # the request records its owner in the fields a VM's record does
        owner = record.get(VMField.USER)
        vm = VMRecord(request_id=request_id)
        if owner:
            token, lifetime = record.get(VMField.TOKEN, ""), cfg.vm_lifetime_auth or None
            vm = VMRecord(request_id=request_id, token=token, user=owner, lifetime=lifetime)
        for (alias, pool, count), have in zip(items, await od.delivered(request_id, items), strict=True):
            missing = count - len(have)
            while missing > 0:
                taken = await self.store.checkout(
                    [[pool]],
                    self.clock(),
                    vm._replace(pool_alias=alias).fields(),
                    token_id=record.get(VMField.TOKEN) or None,
                    ondemand=(request_id, alias, pool),
                    lifetime_hours=vm.lifetime_hours(cfg.vm_lifetime),
                )
                if isinstance(taken, int):
                    break
                log.info("ondemand %s: %s from %s delivered", request_id, taken[0][1], pool)
                missing -= 1
                changed = True
            if missing > 0:
                demand[pool] += missing
                complete = False
        if complete:
            await od.close(request_id, "ready", {}, FINISHED_TTL_SECONDS)
            log.info("ondemand %s: ready", request_id)
            changed = True
        return changed

    async def fail(self, request_id: str, items: list[Item], reason: str) -> None:
        await self.release(request_id, items)
        await self.store.ondemand.close(request_id, "failed", {"failure_reason": reason}, FINISHED_TTL_SECONDS)
        log.warning("ondemand %s: failed: %s", request_id, reason)

    async def release(self, request_id: str, items: list[Item]) -> None:
        """Return every VM delivered to the request (running -> completed; the pools destroy them)."""
        for (_, pool, _), names in zip(items, await self.store.ondemand.delivered(request_id, items), strict=True):
            for name in names:
                await self.store.move(pool, name, VMState.RUNNING, VMState.COMPLETED, reason="on-demand request ended")
        await self.store.ondemand.forget_vms(request_id, items)

    async def run(self, stop: asyncio.Event, metrics: Metrics, *, wakeups: Wakeups | None = None) -> None:
        """Every second while requests are open; otherwise every IDLE_POLL_SECONDS, or at once when the
        API announces a new request on ``wakeups`` (each second while that is not listening)."""
        sleep = idle_sleep(wakeups, ONDEMAND, lambda: self._open, IDLE_POLL_SECONDS)
        await every(1.0, stop, self.run_once, name="ondemand", metrics=metrics, sleep=sleep)

"""What the VM routes do, once for every API version: check out, query, modify and return VMs."""

from __future__ import annotations

import contextlib
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from vmpooler.api.services.vm_changes import check_lifetime, check_tags
from vmpooler.api.services.waiting import WaitingCheckouts, new_ticket, quota_error, quota_limits
from vmpooler.auth.tokens import Identity
from vmpooler.config import Settings
from vmpooler.domain import Checkout
from vmpooler.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, StoreError, Unauthorized
from vmpooler.health import Failover, HandoutGate
from vmpooler.limits import LIFETIME_CEILING_HOURS
from vmpooler.metrics.base import Metrics
from vmpooler.states import VMState
from vmpooler.store.records import VMRecord, rfc3339
from vmpooler.store.redis import Store
from vmpooler.store.waiting import CheckoutVia
from vmpooler.store.waits import WaitStore

# always used with fullmatch: `$` also matches before a final newline, so "team\n" passed as a name
POOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9-]{1,63})*")
MAX_VMS_PER_REQUEST = 100
MAX_DISK_GB = 2048


@dataclass(frozen=True, slots=True)
class VMView:
    """A VM's record as every API version reports it (before the version picks its hostname shape)."""

    name: str
    state: VMState
    fields: dict[str, Any]
    domain: str | None


def short_name(hostname: str) -> str:
    if len(hostname) > 255 or not HOSTNAME.fullmatch(hostname):
        raise BadRequest("Invalid hostname format: use the VM's name as checkout returned it")
    return hostname.split(".", 1)[0]


def parse_count(pool: str, value: Any) -> int:
    """A VM count given as 3 or "3"; 1..MAX_VMS_PER_REQUEST."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest(f"VM count for {pool!r} must be an integer, got {value!r}")
    try:
        count = int(value)
    except ValueError as exc:
        raise BadRequest(f"VM count for {pool!r} must be an integer, got {value!r}") from exc
    if count < 1:
        raise BadRequest(f"VM count for {pool!r} must be at least 1, got {count}")
    if count > MAX_VMS_PER_REQUEST:
        raise BadRequest(f"VM count for {pool!r} must be at most {MAX_VMS_PER_REQUEST}, got {count}")
    return count


def weighted_order(settings: Settings, pools: list[str], rng: random.Random) -> list[str]:
    """An alias's pools in the order to try them: drawn by ``backend_weight`` (keyed by clone target
    or pool name; default 1), so checkouts spread as configured; weight 0 pools come last."""
    if len(pools) < 2:
        return pools
    weights = settings.config.backend_weight
    remaining = {}
    for name in pools:
        pool = settings.pool(name)
        target = pool.clone_target if pool else None
        remaining[name] = weights.get(target or "", weights.get(name, 1))
    order: list[str] = []
    while any(w > 0 for w in remaining.values()):
        names = [n for n, w in remaining.items() if w > 0]
        chosen = rng.choices(names, weights=[remaining[n] for n in names])[0]
        order.append(chosen)
        del remaining[chosen]
    return order + sorted(remaining)


def parse_spec(spec: str, route: str) -> dict[str, int]:
    """``a+a+b`` from a URL -> ``{"a": 2, "b": 1}`` (a name repeated asks for more of it)."""
    wanted: dict[str, int] = {}
    for name in spec.split("+"):
        if not name:
            raise BadRequest(f"empty pool name in {spec!r}: use {route}/<pool>[+<pool>...]")
        wanted[name] = wanted.get(name, 0) + 1
    for name, count in wanted.items():
        parse_count(name, count)
    return wanted


class VMService:
    """The VM operations behind the routes; it never talks to a provider, only to the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], float] = time.time,
        *,
        auth_enabled: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.auth_enabled = auth_enabled
        self.metrics = metrics or Metrics()
        #: called after every change this service makes (the status report drops its cache)
        self.on_change: Callable[[], None] = lambda: None
        self._rng = random.Random()
        self.handout = HandoutGate(settings, store, clock, self.metrics)
        self.failover = Failover(settings, store, clock)
        self.waiting = WaitingCheckouts(store.queues, clock)

    def pool_names(self) -> list[str]:
        return [pool.name for pool in self.settings.pools]

    def _candidates(self, requested: str) -> list[str]:
        if not POOL_NAME.fullmatch(requested):
            raise BadRequest(f"Invalid pool name format: {requested[:100]!r}")
        pools = [pool.name for pool in self.settings.pools_for(requested)]
        if not pools:
            self.metrics.checkout("unknown", "invalid")
            raise NotFound(f"unknown pool or alias {requested!r}; GET /vm lists the pools", pool=requested)
        return weighted_order(self.settings, pools, self._rng)

    async def checkout(self, wanted: Mapping[str, int], owner: Identity | None = None) -> list[Checkout]:
        """Check out ``count`` VMs per requested pool or alias, all or nothing; a token's owner gets
        ``vm_lifetime_auth`` and the VMs are recorded as theirs."""
        return (await self.checkout_waiting(wanted, owner))[0]

    async def checkout_waiting(
        self,
        wanted: Mapping[str, int],
        owner: Identity | None = None,
        wait: float = 0.0,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[list[Checkout], float]:
        """``checkout``, holding the request up to ``wait`` seconds for its turn in the pool's queue
        (docs/waiting.md); returns the VMs and the seconds waited. ``disconnected`` tells whether the
        client left (then the request gives its place up)."""
        requests: list[list[str]] = []
        names: list[str] = []
        for requested, count in wanted.items():
            candidates = self._candidates(requested)
            requests += [candidates] * count
            names += [requested] * count
        if not requests:
            raise BadRequest('no VMs requested: send {"<pool>": <count>, ...}')
        record = VMRecord()
        if owner is not None:
            lifetime = self.settings.config.vm_lifetime_auth or None
            record = VMRecord(token=owner.token_id, user=owner.user, lifetime=lifetime)
        token_id = owner.token_id if owner else None
        fields = record.fields()
        lifetime_hours = record.lifetime_hours(self.settings.config.vm_lifetime)
        ticket = new_ticket(self.settings, requests[0][0], owner.user if owner else None, len(requests))
        limits = quota_limits(self.settings, ticket.owner, wanted)
        # indexed only for an owner with a quota: the index is pruned when the quota is checked
        index_sets = self.store.queues.owner_index(ticket.owner) if limits else []
        quota_via = self.store.queues.quota_via(limits, partial(quota_error, ticket.owner)) if limits else None

        async def take(batch: Sequence[Sequence[str]], via: CheckoutVia | None = None) -> list[tuple[str, str]] | int:
            return await self.store.checkout(
                batch,
                self.clock(),
                fields,
                token_id=token_id,
                lifetime_hours=lifetime_hours,
                index_sets=index_sets,
                via=via or quota_via,
            )

        waited = 0.0
        taken: list[tuple[str, str]] | int
        # fallback pools and hand-out checks: health/ (each a no-op for pools that configure neither)
        used: Sequence[Sequence[str]] = requests
        if wait > 0:
            if any(len(candidates) > 1 or candidates[0] != ticket.pool for candidates in requests):
                raise BadRequest(
                    "a checkout that waits asks for VMs of one pool: send one request per pool "
                    "(an alias of several pools cannot wait; name one of its pools)"
                )
            try:
                taken, waited = await self.waiting.run(ticket, wait, limits, partial(take, requests), disconnected)
            except ServiceUnavailable:
                self.metrics.checkout(ticket.pool, "empty")  # no turn within the wait: counted as a refusal
                raise
        elif self.failover.involved(requests):
            taken, used = await self.failover.checkout(requests, take)
        else:
            taken = await take(requests)
        if not isinstance(taken, int) and self.handout.applies(taken):
            taken = await self.handout.confirm(used, taken, take, token_id)
        if isinstance(taken, int):
            short = names[taken]
            self.metrics.checkout(short, "empty")
            raise ServiceUnavailable(
                f"not enough ready VMs in {short!r} for this request ({wanted[short]} asked); "
                "nothing was checked out, try again shortly",
                pool=short,
            )
        self.on_change()
        await self.record_waits([pool for pool, _ in taken], waited)
        fallback = Failover.served_by_fallback(requests, taken)
        for (pool, _), via_fallback in zip(taken, fallback, strict=True):
            self.metrics.checkout(pool, "fallback" if via_fallback else "success")
            if owner is not None and self.settings.config.usage_stats:
                self.metrics.usage(owner.user, "allocate", pool)
        return [Checkout(names[i], pool, vm, fallback[i]) for i, (pool, vm) in enumerate(taken)], waited

    async def record_waits(self, pools: list[str], waited: float) -> None:
        """The wait of checked-out VMs (one entry of ``pools`` per VM): the histogram, and for autoscaled
        pools the SLO counts. A store failure here must not fail the checkout that already happened."""
        counts = Counter(pools)
        for pool, count in counts.items():
            self.metrics.checkout_waited(pool, waited, count)
        targets = {p.name: p.autoscale.target_wait_p95_s for p in self.settings.pools if p.autoscale is not None}
        if targets.keys() & counts.keys():
            with contextlib.suppress(StoreError):
                await WaitStore(self.store.client).record(counts, waited, targets, self.clock())

    def domain_of(self, pool: str) -> str | None:
        config = self.settings.pool(pool)
        return self.settings.domain_for(config) if config else None

    async def _find(self, hostname: str) -> tuple[str, str, VMState]:
        """(name, pool, state) of a VM given by short name or FQDN; NotFound when never known."""
        name = short_name(hostname)
        found = await self.store.locate(name)
        if found is None:
            raise NotFound(f"no VM named {name!r}")
        return name, *found

    async def view(self, hostname: str) -> VMView:
        name, pool, state = await self._find(hostname)
        record = await self.store.record(name)
        now = self.clock()
        # a lifetime out of range (stored by hand, or configured) is clamped: one of 1e20 hours has no
        # end date that can be written, and the VM could not be queried
        lifetime = min(int(record.lifetime_hours(self.settings.config.vm_lifetime)), LIFETIME_CEILING_HOURS)
        template = pool if record.template is None else record.template
        fields: dict[str, Any] = {"template": template, "lifetime": lifetime}
        checkout = record.checkout
        if checkout is not None:
            running = max(0.0, (now - checkout) / 3600)
            fields["running"] = round(running, 2)
            fields["remaining"] = round(max(0.0, lifetime - running), 2) if lifetime > 0 else None
            fields["start_time"] = rfc3339(checkout)
            fields["end_time"] = rfc3339(checkout + lifetime * 3600)
        else:
            fields["running"] = 0.0
            fields["remaining"] = 0.0
        fields["state"] = state.value
        if record.user:  # an addition to the original's shape: whose VM this is
            fields["user"] = record.user
        if record.tags:
            fields["tags"] = dict(record.tags)
        if record.snapshots:
            fields["snapshots"] = sorted(record.snapshots)
        if record.disks:
            fields["disk"] = list(record.disks)
        fields["ip"] = record.ip or ""
        if record.host:
            fields["host"] = record.host
        return VMView(name, state, fields, record.domain or self.domain_of(pool))

    async def _check_owner(self, name: str, caller: Identity | None, needs_token: bool) -> None:
        """A VM checked out with a token is its user's: others get 403 (admins excepted), token-less callers 401."""
        if not self.auth_enabled:
            return
        owner = (await self.store.record(name)).user
        if caller is None and (needs_token or owner):
            raise Unauthorized(f"VM {name!r} needs a token: send it in the X-AUTH-TOKEN header")
        if owner and caller is not None and caller.user != owner and not caller.admin:
            raise Forbidden(f"VM {name!r} was checked out by another user")

    async def modify(self, hostname: str, body: Any, caller: Identity | None = None) -> None:
        """PUT: change ``lifetime`` (hours) and/or ``tags``; every problem is reported at once."""
        name, pool, state = await self._find(hostname)
        # as the original: changing the lifetime needs a token, tagging does not (unless someone's VM)
        await self._check_owner(name, caller, needs_token=isinstance(body, dict) and "lifetime" in body)
        if not isinstance(body, dict) or not body:
            raise BadRequest('send a JSON object such as {"lifetime": 2} or {"tags": {"team": "qa"}}')
        failures: list[str] = []
        lifetime = check_lifetime(self.settings, body["lifetime"], failures) if "lifetime" in body else None
        tags = check_tags(self.settings, body["tags"], failures) if "tags" in body else {}
        failures += [
            f"Unknown argument {key!r}: only 'lifetime' and 'tags' can be changed"
            for key in body
            if key not in ("lifetime", "tags")
        ]
        if failures:
            raise BadRequest(" ".join(f if f.endswith(".") else f"{f}." for f in failures), failure=failures)
        self._check_held(name, state, caller)
        if tags:
            limit = self.settings.config.max_tags_per_vm
            would_have = await self.store.tag_vm(name, tags, self.clock(), limit)
            if would_have is not None:
                raise BadRequest(
                    f"Too many tags: a VM may carry at most {limit} (this one would have {would_have}); "
                    "change existing tags instead"
                )
        if lifetime is not None:
            # the checkout time never changes once written: reading it first is safe
            checkout = (await self.store.record(name)).checkout
            ends = checkout + lifetime * 3600 if checkout is not None else math.inf
            await self.store.deadlines.set_lifetime(pool, name, lifetime, ends)

    async def give_back(self, hostname: str, caller: Identity | None = None) -> None:
        """DELETE: a checked-out VM goes to completed; the manager destroys it."""
        name, pool, state = await self._find(hostname)
        await self._check_owner(name, caller, needs_token=False)
        if state is not VMState.RUNNING:
            self.metrics.returned("failed")
            raise NotFound(f"VM {name!r} is not checked out (it is {state.value}); nothing to return")
        # notify: the manager destroys it now, not at its next poll
        if not await self.store.move(pool, name, VMState.RUNNING, VMState.COMPLETED, reason="returned", notify=True):
            self.metrics.returned("failed")
            raise NotFound(f"VM {name!r} was returned already")
        self.metrics.returned("success")
        self.on_change()

    async def queue_snapshot(self, hostname: str, caller: Identity | None) -> str:
        """Queue a snapshot for the manager; returns the snapshot's id (32 characters)."""
        name = await self._operable(hostname, caller)
        snapshot = secrets.token_hex(16)
        await self.store.tasks.add("snapshot", name, snapshot)
        return snapshot

    async def queue_revert(self, hostname: str, snapshot: str, caller: Identity | None) -> None:
        name = await self._operable(hostname, caller)
        if snapshot not in (await self.store.record(name)).snapshots:
            raise NotFound(f"VM {name!r} has no snapshot {snapshot!r}; GET /vm/{name} lists its snapshots")
        await self.store.tasks.add("revert", name, snapshot)

    async def queue_disk(self, hostname: str, size: str, caller: Identity | None) -> str:
        try:
            gigabytes = int(size)
        except ValueError:
            gigabytes = 0
        if not 1 <= gigabytes <= MAX_DISK_GB or str(gigabytes) != size:
            raise BadRequest(f"Disk size must be a valid integer from 1 to {MAX_DISK_GB} (GB), got {size!r}")
        name = await self._operable(hostname, caller)
        await self.store.tasks.add("disk", name, str(gigabytes))
        return f"+{gigabytes}gb"

    async def _operable(self, hostname: str, caller: Identity | None) -> str:
        if self.auth_enabled and caller is None:
            raise Unauthorized("this needs a token: send it in the X-AUTH-TOKEN header")
        name, _, state = await self._find(hostname)
        if state is VMState.DESTROYED:
            raise NotFound(f"VM {name!r} has been destroyed")
        await self._check_owner(name, caller, needs_token=False)
        self._check_held(name, state, caller)
        return name

    @staticmethod
    def _check_held(name: str, state: VMState, caller: Identity | None) -> None:
        """A VM nobody has checked out is changed only by an admin: the change would be handed to
        whoever checks it out next."""
        if state is not VMState.RUNNING and not (caller is not None and caller.admin):
            raise Forbidden(
                f"VM {name!r} is {state.value}, not checked out: only an admin may change it; "
                "check a VM out and change that one"
            )

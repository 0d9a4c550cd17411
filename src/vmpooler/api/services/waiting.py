"""Checkouts that wait their turn: the wait budget a request asks for, quotas, and the loop that holds it.

The order and the hand-out are the store's (store/waiting.py, one queue per pool in Redis); this module
holds the HTTP request while its turn comes: it looks again whenever a VM of its pool becomes ready or
another waiter leaves (one pub/sub subscription per API process, ``WakeHub``), at least every 2 s in
case a wake-up was missed, and gives its place up when the client disconnects or the budget runs out.
See docs/waiting.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from vmpooler.config import Settings
from vmpooler.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable, StoreError
from vmpooler.store.waiting import (
    CheckoutVia,
    NotServedYet,
    QuotaLimits,
    QuotaRefusal,
    WaitGone,
    WaitQueues,
    WaitTicket,
)

__all__ = [
    "MAX_WAIT_SECONDS",
    "WAITED_HEADER",
    "WAIT_NOTE",
    "QuotaExceeded",
    "WaitingCheckouts",
    "WakeHub",
    "quota_limits",
    "wait_budget",
]

log = logging.getLogger("vmpooler.api")

#: the longest wait a request may ask for (seconds)
MAX_WAIT_SECONDS = 600
#: a waiter looks again at least this often, in case a wake-up was missed (pub/sub delivers at most once);
#: wake-ups carry the common case, so this is the idle cost: every waiter's look reads its whole queue
POLL_SECONDS = 2.0
#: a waiter not heard from for this long is dropped from its queue (its API process died)
HEARTBEAT_SECONDS = 10.0
#: how often a waiter asks whether its client is still there
DISCONNECT_CHECK_SECONDS = 0.25
#: requests one pool's queue holds; more are refused at once. Each look of each waiter reads the whole queue
#: (O(waiting) in Redis), so this bounds Redis's work per wake-up (bench/wait_take.py measures it)
MAX_WAITING_PER_POOL = 250
#: what a 503 after a wait suggests: long enough for a clone to finish, short enough to keep a place soon
RETRY_AFTER_SECONDS = 5

#: the reply header saying how long a request that asked to wait waited (seconds, 3 decimals)
WAITED_HEADER = "Vmpooler-Waited"
#: what the checkout routes' OpenAPI text says of the wait budget
WAIT_NOTE = (
    "All or nothing. `?wait=<seconds>` (0-600) or `Prefer: wait=<seconds>` holds the request until its turn in "
    "the pool's fair queue instead of a 503 (docs/waiting.md); the reply then adds `waited`."
)

_PREFER_WAIT = re.compile(r"(?:^|[,;])\s*wait\s*=\s*\"?([^\s,;\"]*)\"?", re.IGNORECASE)


def wait_budget(query: str | None, prefer: str | None) -> tuple[float, bool]:
    """Seconds to wait from ``?wait=`` (which wins) or the ``Prefer: wait=`` header (RFC 7240), and
    whether the header gave it; 0 when neither does. Raises BadRequest outside 0..MAX_WAIT_SECONDS."""
    from_prefer = False
    text = query
    if text is None and prefer:
        match = _PREFER_WAIT.search(prefer)
        if match is not None:
            text, from_prefer = match.group(1), True
    if text is None:
        return 0.0, False
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        where = "Prefer: wait=" if from_prefer else "wait="
        raise BadRequest(f"{where}{text[:20]!r} must be a number of seconds from 0 to {MAX_WAIT_SECONDS}")
    return seconds, from_prefer


class QuotaExceeded(Forbidden):
    """A checkout would take its owner past a quota (403, as Kubernetes answers an exceeded ResourceQuota:
    the request is understood and refused until the owner returns VMs; 429 is the rate limiter's)."""


def quota_error(owner: str, refusal: QuotaRefusal) -> QuotaExceeded:
    what = "VMs overall" if refusal.quota == "running" else f"VMs of {refusal.quota!r}"
    return QuotaExceeded(
        f"quota exceeded: {owner!r} may hold {refusal.limit} {what} and holds {refusal.held}, "
        f"so {refusal.asked} more cannot be checked out; return VMs (DELETE /vm/<hostname>) first",
        quota=refusal.quota,
        held=refusal.held,
        limit=refusal.limit,
        asked=refusal.asked,
    )


def quota_limits(settings: Settings, owner: str, wanted: Mapping[str, int]) -> QuotaLimits | None:
    """What a checkout of ``wanted`` by ``owner`` must be checked against; None when no quota applies."""
    quota = settings.quotas.for_owner(owner)
    if quota is None:
        return None
    pools = tuple(
        (name, limit, wanted[name], tuple(pool.name for pool in settings.pools_for(name)))
        for name, limit in quota.pools.items()
        if name in wanted
    )
    if quota.running is None and not pools:
        return None
    return QuotaLimits(owner, quota.running, sum(wanted.values()), pools)


async def quota_usage(settings: Settings, queues: WaitQueues) -> dict[str, Any]:
    """/status's ``quotas`` section for admins: each owner named in ``:quotas: owners``, what it holds
    against each of its limits."""
    owners = sorted(settings.quotas.owners)
    usage = await queues.usage(owners)
    report: dict[str, Any] = {}
    for owner in owners:
        quota, held = settings.quotas.owners[owner], usage[owner]
        entry: dict[str, Any] = {"running": sum(held.values()), "limit": quota.running}
        entry["pools"] = {
            name: {"running": sum(held.get(p.name, 0) for p in settings.pools_for(name)), "limit": limit}
            for name, limit in quota.pools.items()
        }
        report[owner] = entry
    return report


class WakeHub:
    """One pub/sub subscription per API process, fanned out to the waiters of each pool."""

    def __init__(self, queues: WaitQueues) -> None:
        self.queues = queues
        self._events: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None

    def event(self, pool: str) -> asyncio.Event:
        """An event set at the pool's next wake-up: take it before looking, so none falls in between."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        return self._events.setdefault(pool, asyncio.Event())

    async def _listen(self) -> None:
        """Fan wake-ups out until nobody waits (the next waiter starts it again) or the task is cancelled;
        the cancel is checked by hand because redis-py's pub/sub read may swallow it."""
        task = asyncio.current_task()
        while True:
            try:
                async for pool in self.queues.wakeups():
                    if pool is not None and (event := self._events.pop(pool, None)) is not None:
                        event.set()
                    if (task is not None and task.cancelling()) or (pool is None and not self._events):
                        return
            except StoreError as exc:  # waiters still poll; subscribe again shortly
                log.warning("waiting checkouts: wake-up subscription lost (%s); polling until it is back", exc)
                if not self._events:
                    return
                await asyncio.sleep(POLL_SECONDS)


Attempt = Callable[[CheckoutVia], Awaitable[list[tuple[str, str]] | int]]


class WaitingCheckouts:
    """Holds a checkout until its turn comes in its pool's queue, the budget ends, or its client leaves."""

    def __init__(self, queues: WaitQueues, clock: Callable[[], float]) -> None:
        self.queues = queues
        self.clock = clock
        self.hub = WakeHub(queues)

    async def run(
        self,
        ticket: WaitTicket,
        budget: float,
        limits: QuotaLimits | None,
        attempt: Attempt,
        disconnected: Callable[[], Awaitable[bool]] | None,
    ) -> tuple[list[tuple[str, str]], float]:
        """The VMs taken and the seconds waited; raises ServiceUnavailable (nothing taken) when the budget
        ends, the queue is full or the client left, and QuotaExceeded."""
        started = time.monotonic()
        now = self.clock()
        refused = partial(quota_error, ticket.owner)
        if not await self.queues.join(ticket, now, now + HEARTBEAT_SECONDS, MAX_WAITING_PER_POOL, limits, refused):
            raise _unavailable(
                f"{MAX_WAITING_PER_POOL} requests already wait for {ticket.pool!r}; try again later", ticket
            )
        served, reason = False, "error"
        try:
            while True:
                wake = self.hub.event(ticket.pool)
                now = self.clock()
                via = self.queues.take_via(ticket, now, now + HEARTBEAT_SECONDS, limits, refused)
                try:
                    taken = await attempt(via)
                except NotServedYet:
                    taken = -1
                except WaitGone:  # stalled past its heartbeat (a frozen process): it queues again, at the back
                    await self.queues.join(ticket, now, now + HEARTBEAT_SECONDS, MAX_WAITING_PER_POOL, limits, refused)
                    taken = -1
                if not isinstance(taken, int):
                    served = True
                    return taken, time.monotonic() - started
                remaining = budget - (time.monotonic() - started)
                if remaining <= 0:
                    reason = "budget"
                    raise _unavailable(
                        f"no turn for {ticket.count} VM(s) of {ticket.pool!r} within {budget:g} s of waiting; "
                        "nothing was checked out, try again (with a longer wait) shortly",
                        ticket,
                    )
                if await _until_wake_or_gone(wake, min(POLL_SECONDS, remaining), disconnected):
                    reason = "disconnected"
                    raise _unavailable("the client disconnected while waiting; nothing was checked out", ticket)
        finally:
            if not served:
                with contextlib.suppress(StoreError):
                    await asyncio.shield(self.queues.leave(ticket, reason))

    async def queue(self, settings: Settings, name: str, caller: str | None) -> dict[str, Any]:
        """GET /vm/<pool>/queue: the pool's waiting requests in fair order; the caller's are marked."""
        pools = settings.pools_for(name)
        if len(pools) != 1:
            raise NotFound(
                f"no pool named {name!r}; GET /vm lists the pools (an alias of several: name one)", pool=name
            )
        now = self.clock()
        requests = await self.queues.view(pools[0].name, now)
        places = [
            {
                "place": place,
                "vms": r.count,
                "waited": round(max(0.0, now - r.joined), 3),
                "yours": bool(caller) and r.user == caller,
            }
            for place, r in enumerate(requests, start=1)
        ]
        mine = [p["place"] for p in places if p["yours"]]
        return {
            "pool": pools[0].name,
            "waiting": len(requests),
            "waiting_vms": sum(r.count for r in requests),
            "oldest_wait": max((p["waited"] for p in places), default=0.0),
            "position": mine[0] if mine else None,
            "requests": places,
        }


async def _until_wake_or_gone(
    wake: asyncio.Event, seconds: float, disconnected: Callable[[], Awaitable[bool]] | None
) -> bool:
    """Wait up to ``seconds`` for ``wake``; True as soon as the client is found gone."""
    deadline = time.monotonic() + seconds
    while True:
        if disconnected is not None and await disconnected():
            return True
        left = deadline - time.monotonic()
        if left <= 0 or wake.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), min(DISCONNECT_CHECK_SECONDS, left))


def _unavailable(message: str, ticket: WaitTicket) -> ServiceUnavailable:
    error = ServiceUnavailable(message, pool=ticket.pool)
    error.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return error


def new_ticket(settings: Settings, pool: str, user: str | None, count: int) -> WaitTicket:
    owner = settings.priorities.owner_of(user)
    return WaitTicket(secrets.token_hex(12), pool, owner, user or "", settings.priorities.weight_of(owner), count)


def describe_wait(waited: float) -> dict[str, Any]:
    """What a reply served after waiting adds to its body."""
    return {"waited": round(waited, 3)}

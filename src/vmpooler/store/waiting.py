"""Checkouts that wait their turn, in Redis: requests join a pool's queue, look again, leave (docs/waiting.md).

The fair order, the hand-out and the quota check are Lua scripts (scripts/fair.lua, wait_*.lua, quota.lua)
that hand VMs out with the one checkout script, so every API process and manager sees one queue per pool
and a VM is never handed out twice. A waiting request holds no VM: what the fair pass gives a request
that cannot yet be fully served is a reservation for that pass only, so a waiter that vanishes (its
client left, its process died and its heartbeat lapsed) leaves nothing behind to give back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.eventlog import DEFAULT_MAX_LENGTH, at_field
from vmpooler.store.pubsub import channel_messages
from vmpooler.store.scripts import load, load_with

__all__ = [
    "CheckoutVia",
    "NotServedYet",
    "QueuedRequest",
    "QuotaLimits",
    "QuotaRefusal",
    "WaitGone",
    "WaitQueues",
    "WaitTicket",
]


class NotServedYet(Exception):  # an outcome, not an error: the request keeps its place
    """The fair pass did not serve this request now; ``place`` is its 1-based position in fair order."""

    def __init__(self, place: int, waiting: int) -> None:
        super().__init__(f"place {place} of {waiting}")
        self.place = place
        self.waiting = waiting


class WaitGone(Exception):  # an outcome: it left the queue
    """The request is no longer queued (its heartbeat lapsed while its process was stalled)."""


@dataclass(frozen=True, slots=True)
class QuotaRefusal:
    """Which quota a checkout would exceed: ``quota`` is 'running' (overall) or the pool's name."""

    quota: str
    held: int
    limit: int
    asked: int


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """What the quota script checks for one checkout by ``owner``: the overall limit (None: none) and
    per-pool limits as (pool or alias, limit, VMs asked of it, the pools it counts)."""

    owner: str
    running: int | None
    asked: int
    pools: tuple[tuple[str, int, int, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class CheckoutVia:
    """A script a checkout runs through instead of the plain one: its keys and arguments go first, and
    ``refusal`` turns a reply below 0 (not served) into the exception to raise."""

    script: AsyncScript
    keys: list[str]
    args: list[str]
    refusal: Callable[[list[Any]], Exception]


@dataclass(frozen=True, slots=True)
class WaitTicket:
    """One waiting request: its id, the pool it waits for, whose it is and how many VMs it asks."""

    request_id: str
    pool: str
    owner: str
    user: str
    weight: float
    count: int


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request as the queue view shows it, in fair order; ``servable``: the ready VMs serve it now."""

    request_id: str
    owner: str
    user: str
    count: int
    joined: float
    servable: bool


def quota_refusal(reply: Sequence[Any]) -> QuotaRefusal:
    return QuotaRefusal(str(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]))


class WaitQueues:
    """The waiting queues and quotas; the API's waiting loop (api/services/waiting.py) drives them."""

    def __init__(self, client: Redis, events_max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.client = client
        #: the event stream's length (about): checkout.queued, .served and .gave_up are written with each change
        self.events_max_length = str(events_max_length)
        self._quota_checkout = load_with(client, "checkout_quota", ("checkout", "quota"))
        self._take = load_with(client, "wait_take", ("checkout", "quota", "fair"))
        self._view = load_with(client, "wait_view", ("fair",))
        self._join = load_with(client, "wait_join", ("quota",))
        self._leave = load(client, "wait_leave")

    @staticmethod
    def owner_index(owner: str) -> list[str]:
        """The index sets a checkout by ``owner`` adds its VMs to (none without a token)."""
        return [keys.owner_vms(owner)] if owner else []

    @staticmethod
    def _quota_args(limits: QuotaLimits | None) -> list[str]:
        if limits is None:
            return ["0"]
        args = [
            "1",
            keys.owner_vms(limits.owner),
            keys.VM_PREFIX,
            keys.state_set_prefix(VMState.RUNNING),
            str(-1 if limits.running is None else limits.running),
            str(limits.asked),
            str(len(limits.pools)),
        ]
        for name, limit, asked, pools in limits.pools:
            args += [name, str(limit), str(asked), str(len(pools)), *pools]
        return args

    def quota_via(self, limits: QuotaLimits, refused: Callable[[QuotaRefusal], Exception]) -> CheckoutVia:
        """A plain checkout that first checks ``limits``, in the same script."""
        args = self._quota_args(limits)
        return CheckoutVia(
            self._quota_checkout, [], [str(len(args)), *args], lambda reply: refused(quota_refusal(reply))
        )

    async def join(
        self,
        ticket: WaitTicket,
        now: float,
        expires: float,
        max_waiting: int,
        limits: QuotaLimits | None = None,
        refused: Callable[[QuotaRefusal], Exception] | None = None,
    ) -> bool:
        """Queue ``ticket``; False when the pool's queue already holds ``max_waiting`` requests. An owner
        already past a quota of ``limits`` is not queued: ``refused``'s error is raised."""
        async with translated():
            reply = await self._join(
                keys=[keys.wait_queue(ticket.pool), keys.wait_vtime(ticket.pool), keys.WAIT_SEQ, keys.EVENT_STREAM],
                args=[
                    keys.WAIT_REQUEST_PREFIX,
                    ticket.request_id,
                    ticket.owner,
                    ticket.user,
                    repr(ticket.weight),
                    str(ticket.count),
                    repr(now),
                    repr(expires),
                    str(max_waiting),
                    self.events_max_length,
                    at_field(now),
                    ticket.pool,
                    *self._quota_args(limits),
                ],
            )
        if int(reply[0]) == -2 and refused is not None:
            raise refused(quota_refusal(reply))
        if int(reply[0]) > 0:
            # the pool's managers look now: a pool with a suspended tier resumes VMs for its waiters
            async with translated():
                await self.client.publish(keys.EVENTS, ticket.pool)
        return int(reply[0]) > 0

    def take_via(
        self,
        ticket: WaitTicket,
        now: float,
        expires: float,
        limits: QuotaLimits | None,
        refused: Callable[[QuotaRefusal], Exception],
    ) -> CheckoutVia:
        """The checkout that serves ``ticket`` if the fair pass gives it every VM it asked for now;
        otherwise it raises NotServedYet (with the place), WaitGone, or ``refused``'s error."""
        quota = self._quota_args(limits)
        args = [
            ticket.request_id,
            repr(now),
            keys.WAIT_REQUEST_PREFIX,
            repr(expires),
            keys.WAIT_WAKE,
            ticket.pool,
            self.events_max_length,
            at_field(now),
            str(len(quota)),
            *quota,
        ]

        def refusal(reply: list[Any]) -> Exception:
            code = int(reply[0])
            if code == -1:
                return refused(quota_refusal(reply))
            if code == -2:
                return NotServedYet(int(reply[1]), int(reply[2]))
            return WaitGone(f"waiting request {ticket.request_id} left the queue of {ticket.pool}")

        queue_keys = [keys.wait_queue(ticket.pool), keys.wait_vtime(ticket.pool), keys.EVENT_STREAM]
        return CheckoutVia(self._take, queue_keys, args, refusal)

    async def leave(self, ticket: WaitTicket, reason: str = "left") -> bool:
        """Give up ``ticket``'s place (``reason`` goes into its checkout.gave_up event); True when it was
        still waiting."""
        async with translated():
            removed = await self._leave(
                keys=[
                    keys.wait_queue(ticket.pool),
                    keys.wait_vtime(ticket.pool),
                    keys.wait_request(ticket.request_id),
                    keys.EVENT_STREAM,
                ],
                args=[ticket.request_id, keys.WAIT_WAKE, ticket.pool, self.events_max_length, at_field(), reason],
            )
        return bool(removed)

    async def view(self, pool: str, now: float) -> list[QueuedRequest]:
        """The pool's waiting requests in fair order (requests whose heartbeat lapsed are dropped)."""
        async with translated():
            flat = await self._view(
                keys=[
                    keys.wait_queue(pool),
                    keys.wait_vtime(pool),
                    keys.state_set(VMState.READY, pool),
                    keys.EVENT_STREAM,
                ],
                args=[keys.WAIT_REQUEST_PREFIX, repr(now), self.events_max_length, pool, at_field(now)],
            )
        return [
            QueuedRequest(
                str(flat[i]),
                str(flat[i + 1]),
                str(flat[i + 2]),
                int(flat[i + 3]),
                float(flat[i + 4]),
                bool(flat[i + 5]),
            )
            for i in range(0, len(flat), 6)
        ]

    async def queue_lengths(self, pools: Sequence[str]) -> dict[str, int]:
        """Requests waiting per pool, in one round trip (for /status and the autoscaler). A request whose
        process died counts until a pass drops it, at most one heartbeat later."""
        if not pools:
            return {}
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.zcard(keys.wait_queue(pool))
            found = await pipe.execute()
        return {pool: int(n) for pool, n in zip(pools, found, strict=True)}

    async def usage(self, owners: Sequence[str]) -> dict[str, dict[str, int]]:
        """owner -> pool -> VMs it has checked out now (what its quota counts), in three round trips."""
        running_prefix = keys.state_set_prefix(VMState.RUNNING)
        async with translated():
            async with self.client.pipeline(transaction=False) as pipe:
                for owner in owners:
                    pipe.smembers(keys.owner_vms(owner))
                held = [
                    (owner, str(name))
                    for owner, names in zip(owners, await pipe.execute(), strict=True)
                    for name in names
                ]
            async with self.client.pipeline(transaction=False) as pipe:
                for _, name in held:
                    pipe.hget(keys.vm(name), "pool")
                pools = [str(p) if p is not None else "" for p in await pipe.execute()]
            async with self.client.pipeline(transaction=False) as pipe:
                for (_, name), pool in zip(held, pools, strict=True):
                    pipe.sismember(running_prefix + pool, name)
                running = await pipe.execute()
        found: dict[str, dict[str, int]] = {owner: {} for owner in owners}
        for (owner, _), pool, is_running in zip(held, pools, running, strict=True):
            if is_running:
                found[owner][pool] = found[owner].get(pool, 0) + 1
        return found

    @staticmethod
    def queue_wake(pipe: Pipeline, pool: str) -> None:
        """Tell the pool's waiters to look again (a VM of it became ready), in the caller's pipeline."""
        pipe.publish(keys.WAIT_WAKE, pool)

    async def wake(self, pool: str) -> None:
        """Tell the pool's waiters to look again now (a VM became ready outside a pipeline: a resume)."""
        async with translated():
            await self.client.publish(keys.WAIT_WAKE, pool)

    def wakeups(self, poll_seconds: float = 1.0) -> AsyncGenerator[str | None, None]:
        """Names of pools whose waiters should look again; None after ``poll_seconds`` without one.
        Raises StoreError when the subscription breaks."""
        return channel_messages(self.client, keys.WAIT_WAKE, poll_seconds)

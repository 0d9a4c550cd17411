"""Counts what chaos may have broken: VMs in two states, VMs only the provider still has, lost records."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.servers import make_store
from vmpooler.providers.dummy_inventory import read_inventory
from vmpooler.states import ALLOWED, LIVE_STATES, VMState
from vmpooler.store import keys

#: in the provider and known to Redis in one of these states: accounted for (FAILED and COMPLETED
#: are waiting for their destroy, DISCOVERED for its adoption)
ACCOUNTED = frozenset(LIVE_STATES)


@dataclass(frozen=True)
class Census:
    """Where every VM stands at one moment: Redis's state sets and the provider's inventory."""

    #: VM name -> every (pool, state) set it is a member of; exactly one when all is well
    placements: dict[str, list[tuple[str, VMState]]]
    #: pool -> names of the VMs the provider holds
    provider: dict[str, set[str]]

    def members(self, state: VMState, pool: str | None = None) -> set[str]:
        """VMs in ``state`` (of ``pool``, or of any pool)."""
        return {
            name for name, where in self.placements.items() if any(s is state and pool in (None, p) for p, s in where)
        }

    def in_several_states(self) -> dict[str, list[tuple[str, VMState]]]:
        return {name: where for name, where in self.placements.items() if len(where) > 1}

    def leaked(self) -> set[str]:
        """VMs the provider holds that Redis does not know in that pool (or knows only as destroyed)."""
        return {
            name
            for pool, names in self.provider.items()
            for name in names
            if not any(p == pool and s in ACCOUNTED for p, s in self.placements.get(name, []))
        }

    def phantoms(self) -> set[str]:
        """VMs Redis offers (ready) or lends (running) that the provider no longer has."""
        held = set().union(*self.provider.values()) if self.provider else set()
        return (self.members(VMState.READY) | self.members(VMState.RUNNING)) - held

    def counts(self, pool: str) -> dict[VMState, int]:
        found = dict.fromkeys(LIVE_STATES, 0)
        for where in self.placements.values():
            for p, state in where:
                if p == pool:
                    found[state] += 1
        return found


def provider_inventory(path: Path) -> dict[str, set[str]]:
    """The dummy provider's shared inventory (its snapshot and journal), read as its other readers do."""
    return {pool: set(vms) for pool, vms in read_inventory(path).items()}


def take_census(redis_port: int, pools: Sequence[str], inventory: Path | None = None) -> Census:
    """Read every pool's state sets through ``Store.all_members``, then the provider's inventory (none
    when ``inventory`` is None)."""

    async def scan() -> dict[str, dict[VMState, set[str]]]:
        store = make_store(redis_port)
        try:
            return {pool: await store.all_members(pool) for pool in pools}
        finally:
            await store.close()

    placements: dict[str, list[tuple[str, VMState]]] = {}
    for pool, members in asyncio.run(scan()).items():
        for state, names in members.items():
            for name in names:
                placements.setdefault(name, []).append((pool, state))
    return Census(placements, provider_inventory(inventory) if inventory else {})


def reachable(source: VMState) -> frozenset[VMState]:
    """``source`` and every state the lifecycle table allows a VM to reach from it."""
    seen = {source}
    frontier = [source]
    while frontier:
        for target in ALLOWED[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return frozenset(seen)


def where_now(redis_port: int, names: Sequence[str]) -> dict[str, VMState | None]:
    """Each VM's state through ``Store.locate``: DESTROYED when only its record is left, None when
    Redis has no trace of it at all (the record is lost)."""

    async def locate() -> dict[str, VMState | None]:
        store = make_store(redis_port)
        try:
            found: dict[str, VMState | None] = {}
            for name in names:
                located = await store.locate(name)
                found[name] = None if located is None else located[1]
            return found
        finally:
            await store.close()

    return asyncio.run(locate())


def unexpected_moves(before: dict[str, VMState], redis_port: int) -> dict[str, tuple[VMState, VMState | None]]:
    """VMs whose state now cannot follow from their state ``before`` (a step back, or a lost record)."""
    now = where_now(redis_port, sorted(before))
    return {
        name: (was, now[name]) for name, was in before.items() if now[name] is None or now[name] not in reachable(was)
    }


def states_now(redis_port: int, pools: Sequence[str]) -> dict[str, VMState]:
    """name -> state for every VM in a live state set (the first set when a VM is in several)."""
    census = take_census(redis_port, pools)
    return {name: where[0][1] for name, where in census.placements.items()}


@dataclass
class FillSampler:
    """Samples every pool's ready + pending every ``period`` seconds in a thread; keeps the peak."""

    redis_port: int
    sizes: dict[str, int]
    period: float = 0.1
    samples: int = 0
    #: the largest (ready + pending - size) seen, per pool
    peak_over: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FillSampler:
        self.peak_over = {pool: -size for pool, size in self.sizes.items()}
        self._thread = threading.Thread(target=self._run, name="fill-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        client = redis.Redis(port=self.redis_port, socket_timeout=5)
        try:
            while not self._stop.wait(self.period):
                with client.pipeline(transaction=True) as pipe:
                    for pool in self.sizes:
                        pipe.scard(keys.state_set(VMState.READY, pool))
                        pipe.scard(keys.state_set(VMState.PENDING, pool))
                    found = pipe.execute()
                for i, (pool, size) in enumerate(self.sizes.items()):
                    over = int(found[2 * i]) + int(found[2 * i + 1]) - size
                    self.peak_over[pool] = max(self.peak_over[pool], over)
                self.samples += 1
        finally:
            client.close()

"""What one pool's manager works with: its settings resolved to seconds, its provider and the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from vmpooler.config.handout import HandoutCheck
from vmpooler.domain import PoolTarget
from vmpooler.errors import ProviderError, ProviderTimeout, StoreError
from vmpooler.manager.breaker import CircuitBreaker
from vmpooler.metrics.base import Metrics
from vmpooler.providers.base import Provider
from vmpooler.sizing import AutoscaleSpec
from vmpooler.states import VMState
from vmpooler.store.records import VMRecord
from vmpooler.store.redis import Store
from vmpooler.store.replies import Fields

log = logging.getLogger("vmpooler.manager")

T = TypeVar("T")


@dataclass
class PoolPolicy:
    """A pool's knobs in the units the manager uses (seconds), resolved from config and overrides."""

    size: int
    template: str
    clone_target: str
    timeout: float
    ready_ttl: float
    check_interval: float
    lifetime_hours: float
    prefix: str
    domain: str | None
    task_limit: int
    loop_delay_min: float
    loop_delay_max: float
    loop_delay_decay: float
    #: the largest size an override may give the pool (``max_pool_size``)
    max_size: int = 10_000
    #: set: the ready target follows demand (``manager/autoscale.py``) and ``size`` is not used
    autoscale: AutoscaleSpec | None = None
    #: hours a VM that failed its hand-out check is kept before it is destroyed
    quarantine_hours: float = 24.0
    #: the pool's hand-out check (run by the API), whose failure rate may open the breaker
    handout_check: HandoutCheck | None = None
    #: VMs kept suspended besides the ready ones (the suspended tier, manager/suspended.py)
    suspended: int = 0


@dataclass
class PoolContext:
    name: str
    policy: PoolPolicy
    provider: Provider
    store: Store
    provider_options: dict[str, object] = field(default_factory=dict)
    #: this manager process, written on the VMs it clones (see Store.heartbeat)
    manager_id: str = ""
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], float] = time.time
    call_timeout: float = 120.0
    ready_poll_interval: float = 1.0
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    #: this manager's fencing value for the pool's lease; empty when pools are not shared
    fence: str = ""
    #: every pool of this pool's provider, for its ``max_vms`` limit, and the lock their clones
    #: are counted and recorded under (one per provider in a manager; several managers may still
    #: overshoot the limit by the clones they record at the same moment)
    provider_pools: list[str] = field(default_factory=list)
    quota_lock: asyncio.Lock | contextlib.AbstractAsyncContextManager[None] = field(
        default_factory=contextlib.nullcontext
    )
    #: called when one of this manager's clone slots is released (pools waiting for one may go on)
    on_slot_freed: Callable[[], None] = lambda: None
    #: called with the seconds from clone start to ready of each VM this manager saw become ready
    on_ready: Callable[[float], None] = lambda seconds: None
    #: the problem last published to /status, so an unchanged one is not written every pass
    _published: str | None = None

    @property
    def target(self) -> PoolTarget:
        options = dict(self.provider_options)
        if self.policy.clone_target:
            options["clone_target"] = self.policy.clone_target
        return PoolTarget(self.name, self.policy.template, options)

    async def call(self, what: str, work: Awaitable[T], timeout: float | None = None, vm: str | None = None) -> T:
        """Await a provider call, bounded in time; every failure comes out as a ProviderError that names
        this pool, ``vm`` and the call (``what``)."""
        limit = timeout if timeout is not None else self.call_timeout
        try:
            async with asyncio.timeout(limit):
                return await work
        except TimeoutError as exc:
            late = ProviderTimeout(f"{self.provider.name}.{what} gave no answer within {limit:.0f}s")
            raise late.with_context(pool=self.name, vm=vm, op=what) from exc
        except ProviderError as exc:
            exc.with_context(pool=self.name, vm=vm, op=what)
            raise
        except Exception as exc:
            # a provider bug must not take the pool down: count it as a failed call
            failed = ProviderError(f"{self.provider.name}.{what} failed: {exc!r}")
            raise failed.with_context(pool=self.name, vm=vm, op=what) from exc

    async def move(
        self, name: str, source: VMState, target: VMState, reason: str, fields: Fields | None = None
    ) -> bool:
        """One logged lifecycle step; False when someone else moved the VM first."""
        moved = await self.store.move(self.name, name, source, target, fields, reason=reason)
        if moved:
            log.info("pool %s vm %s: %s -> %s (%s)", self.name, name, source, target, reason)
        return moved

    async def mark_ready(self, name: str, started: float) -> bool:
        """Record where a booted VM can be reached, then move it pending -> ready.

        Real platforms learn a VM's address only once it has booted (vSphere guest tools, a cloud's
        network), so it is asked for here rather than taken from the clone's reply alone.
        """
        try:
            address = await self.call("get_vm_ip_address", self.provider.get_vm_ip_address(self.target, name))
        except ProviderError as exc:
            log.warning("pool %s vm %s: no address yet (%s)", self.name, name, exc)
            address = None
        now = self.clock()
        fields = VMRecord(ip=address).fields() if address else None
        became_ready = await self.store.mark_ready(self.name, name, now, now - started, fields)
        if became_ready:
            self.metrics.became_ready(self.name, now - started)
            self.on_ready(now - started)
            log.info("pool %s vm %s: pending -> ready (booted in %.1fs)", self.name, name, now - started)
            await self.clone_succeeded()
        return became_ready

    async def provider_full(self) -> bool:
        """True while the provider holds its ``max_vms`` (every VM Redis knows in its pools counts,
        until it is destroyed). Checked before each clone, after the previous one was recorded."""
        limit = self.provider.options.max_vms
        if limit is None:
            return False
        counts = await self.store.counts(self.provider_pools or [self.name])
        return sum(sum(by_state.values()) for by_state in counts.values()) >= limit

    async def clone_failed(self, problem: str, permanent: bool) -> None:
        if self.breaker.failed(problem, permanent):
            log.warning(
                "pool %s: circuit breaker open after %d failed clones, next try in %.0fs: %s",
                self.name,
                self.breaker.failures,
                self.breaker.backoff,
                problem,
            )
            await self.publish_health()

    async def clone_succeeded(self) -> None:
        if self.breaker.succeeded():
            log.info("pool %s: clones work again, circuit breaker closed", self.name)
            await self.publish_health()

    async def publish_health(self, unreachable: str | None = None) -> None:
        """Tell /status and the metrics why this pool cannot be filled, or that it can again."""
        problem = unreachable or (self.breaker.problem if self.breaker.degraded else None)
        if problem == self._published:
            return
        retry_at = self.breaker.retry_at if self.breaker.degraded and not unreachable else None
        try:
            if problem:
                await self.store.health.degrade(self.name, problem, self.clock(), retry_at)
            else:
                await self.store.health.recover(self.name)
        except StoreError as exc:
            log.warning("pool %s: cannot publish its health: %s", self.name, exc)
            return
        self._published = problem
        self.metrics.degraded(self.name, problem is not None)

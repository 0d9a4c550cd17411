"""The manager's cadence: one loop per pool, each pass followed by an adaptive, wake-able sleep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping

from vmpooler.config import PoolSettings, Settings
from vmpooler.errors import LeaseLost, ProviderError, StoreError
from vmpooler.manager.breaker import CircuitBreaker
from vmpooler.manager.cadence import every, supervised, wait
from vmpooler.manager.context import PoolContext, PoolPolicy
from vmpooler.manager.event_keeper import EXPIRING_SECONDS, EventKeeper
from vmpooler.manager.history import HistorySampler, seconds_to_next_sample
from vmpooler.manager.leases import LeaseKeeper
from vmpooler.manager.ondemand import OndemandProvisioner
from vmpooler.manager.pool import PoolReconciler
from vmpooler.manager.quiet import Census
from vmpooler.manager.tasks import TaskWorker
from vmpooler.manager.wakeups import Wakeups
from vmpooler.metrics.base import Metrics
from vmpooler.providers.base import Provider
from vmpooler.store.events import ONDEMAND, TASKS
from vmpooler.store.redis import Store

log = logging.getLogger("vmpooler.manager")

#: a manager's heartbeat is renewed this often and lapses after HEARTBEAT_TTL without renewal; then
#: other managers treat the VMs it was cloning as interrupted
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TTL = 20

#: while the event subscription is down, how often a sleeping pool loop looks for a reason to wake
#: early (a checkout, a return, an override): one cheap pipelined read per pool
WAKE_POLL_SECONDS = 1.0

#: the pool loops' first passes are spread this far apart (at most FIRST_PASS_SPREAD_MAX in all), so a
#: thousand pools do not all queue for Redis connections in the same instant at start
FIRST_PASS_SPREAD = 0.005
FIRST_PASS_SPREAD_MAX = 5.0


def policy_for(settings: Settings, pool: PoolSettings) -> PoolPolicy:
    cfg = settings.config
    return PoolPolicy(
        size=pool.size,
        template=pool.template,
        clone_target=pool.clone_target or cfg.clone_target or "",
        timeout=float(pool.timeout or cfg.timeout) * 60,
        ready_ttl=float(pool.ready_ttl or cfg.ready_ttl) * 60,
        check_interval=float(cfg.vm_checktime) * 60,
        lifetime_hours=float(cfg.vm_lifetime),
        prefix=cfg.prefix,
        domain=settings.domain_for(pool),
        task_limit=cfg.task_limit,
        loop_delay_min=float(pool.check_loop_delay_min or cfg.check_loop_delay_min),
        loop_delay_max=float(pool.check_loop_delay_max or cfg.check_loop_delay_max),
        loop_delay_decay=float(pool.check_loop_delay_decay or cfg.check_loop_delay_decay),
        max_size=cfg.max_pool_size,
        autoscale=pool.autoscale.spec() if pool.autoscale is not None else None,
        quarantine_hours=pool.quarantine_hours,
        handout_check=pool.handout_check,
        suspended=pool.suspended,
    )


def pool_record(settings: Settings, pool: PoolSettings) -> dict[str, str]:
    """The ``vmpooler__pool__<name>`` hash, as the original publishes it for the API and operators."""
    record = {"name": pool.name, "template": pool.template, "size": str(pool.size), "provider": pool.provider}
    if pool.alias:
        record["alias"] = ",".join(pool.alias)
    # every key the pool sets, as the original writes them, so a process without :pools: serves it alike
    for key in ("dns_plugin", "clone_target", "timeout", "timeout_notification", "ready_ttl"):
        value = getattr(pool, key)
        if value is not None:
            record[key] = str(value)
    for key, value in pool.provider_options.items():
        if isinstance(value, str | int | float | bool):
            record[key] = str(value).lower() if isinstance(value, bool) else str(value)
    domain = settings.domain_for(pool)
    if domain:
        record["domain"] = domain
    return record


class Manager:
    """Reconciles every configured pool; ``run_once`` is one pass over all of them (for tests)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.time,
        call_timeout: float = 120.0,
        ready_poll_interval: float = 1.0,
        metrics: Metrics | None = None,
        history_wait: Callable[[float], float] = seconds_to_next_sample,
    ) -> None:
        """``history_wait(now)``: seconds until the next history sample (a test may move it away)."""
        self.settings = settings
        self.store = store
        self.providers = providers
        self.manager_id = uuid.uuid4().hex[:12]
        self.metrics = metrics or Metrics()
        self.reconcilers: dict[str, PoolReconciler] = {}
        self.census = Census(store, [pool.name for pool in settings.pools])
        cfg = settings.config
        quota_locks = {name: asyncio.Lock() for name, p in providers.items() if p.options.max_vms is not None}
        for pool in settings.pools:
            breaker = CircuitBreaker(
                enabled=cfg.circuit_breaker_enabled,
                threshold=cfg.circuit_breaker_failure_threshold,
                base_backoff=cfg.circuit_breaker_timeout,
                max_backoff=max(cfg.circuit_breaker_timeout, cfg.circuit_breaker_max_timeout),
                clock=clock,
            )
            ctx = PoolContext(
                name=pool.name,
                policy=policy_for(settings, pool),
                provider=providers[pool.provider],
                store=store,
                provider_options=dict(pool.provider_options),
                provider_pools=[p.name for p in settings.pools if p.provider == pool.provider],
                quota_lock=quota_locks.get(pool.provider) or contextlib.nullcontext(),
                clock=clock,
                call_timeout=call_timeout,
                ready_poll_interval=ready_poll_interval,
                manager_id=self.manager_id,
                metrics=self.metrics,
                breaker=breaker,
            )
            self.reconcilers[pool.name] = PoolReconciler(ctx, census=self.census)
            ctx.on_slot_freed = self._wake_starved_pools
        self.leases = LeaseKeeper(
            store,
            self.manager_id,
            list(self.reconcilers),
            cfg.manager_lease_seconds,
            HEARTBEAT_TTL,
            self._fence_changed,
        )
        # the pools' wake-ups, and those of the task and on-demand loops
        self.wakeups = Wakeups(store, [*self.reconcilers, TASKS, ONDEMAND])
        self.tasks = TaskWorker(store, {name: r.ctx for name, r in self.reconcilers.items()}, clock)
        self.ondemand = OndemandProvisioner(settings, store, clock)
        self.history = HistorySampler(settings, store, clock, history_wait)
        held = [name for name in self.reconcilers]
        self.event_keeper = EventKeeper(settings, store, lambda: [p for p in held if self.leases.holds(p)], clock)

    async def register_pools(self) -> None:
        """Publish the configured pools for API processes started without ``:pools:``; pools that were
        themselves read from Redis are left as they are."""
        if self.settings.pools_from_redis:
            return
        await self.store.register_pools({p.name: pool_record(self.settings, p) for p in self.settings.pools})

    def _wake_starved_pools(self) -> None:
        for name, reconciler in self.reconcilers.items():
            if reconciler.starved:
                self.wakeups.wake(name)

    def _fence_changed(self, pool: str, fence: str) -> None:
        reconciler = self.reconcilers[pool]
        reconciler.ctx.fence = fence
        reconciler.forget_cached_state()  # another manager may have changed the pool meanwhile

    async def run_once(self, *, quiet: bool = False) -> dict[str, bool]:
        """One pass of the on-demand provisioner, then one over every pool; with ``quiet``, as the
        running manager makes it when no event came (settled pools read nothing of themselves)."""
        await self.ondemand.run_once()
        results = await asyncio.gather(*(r.run_once(quiet=quiet) for r in self.reconcilers.values()))
        return dict(zip(self.reconcilers, results, strict=True))

    async def run(self, stop: asyncio.Event, grace: float = 10.0) -> None:
        """Loop every pool until ``stop`` is set, then let in-flight work finish for ``grace`` seconds."""
        while not stop.is_set():
            try:
                await self.register_pools()
                # counted among the live managers before taking a share of the pools
                await self.store.heartbeat(self.manager_id, _description(), HEARTBEAT_TTL, time.time())
                await self._retire_dead_neighbours()
                await self.leases.renew_once()
                break
            except StoreError as exc:
                log.warning("manager: cannot register pools yet: %s", exc)
                await wait(stop, 2.0)
        spread = min(FIRST_PASS_SPREAD, FIRST_PASS_SPREAD_MAX / max(len(self.reconcilers), 1))
        loops = [
            asyncio.create_task(self._pool_loop(r, stop, first_pass_after=i * spread), name=f"pool:{n}")
            for i, (n, r) in enumerate(self.reconcilers.items())
        ]
        background = {
            "vm-tasks": self.tasks.run(stop, self.metrics, wakeups=self.wakeups),
            "ondemand": self.ondemand.run(stop, self.metrics, wakeups=self.wakeups),
            "heartbeat": every(HEARTBEAT_SECONDS, stop, self._heartbeat, name="heartbeat", metrics=self.metrics),
            "leases": self.leases.run(stop, self.metrics),
            "wakeups": self.wakeups.run(stop, self.metrics),
            "history": self.history.run(stop, self.metrics),
            "event-keeper": every(
                EXPIRING_SECONDS, stop, self.event_keeper.run_once, name="event-keeper", metrics=self.metrics
            ),
            "purge-unconfigured": supervised("purge-unconfigured", self.purge_unconfigured(), self.metrics),
        }
        loops += [asyncio.create_task(work, name=name) for name, work in background.items()]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*(r.lifecycle.drain(grace) for r in self.reconcilers.values()))
            try:
                await self.store.retire(self.manager_id)
            except StoreError:
                pass  # the heartbeat lapses on its own
            log.info("manager %s: stopped", self.manager_id)

    async def purge_unconfigured(self) -> None:
        """Once, at start: each provider with ``purge_unconfigured_resources`` deletes what no pool is for."""
        for name, provider in self.providers.items():
            if not provider.options.purge_unconfigured_resources:
                continue
            pools = [pool.target() for pool in self.settings.pools if pool.provider == name]
            try:
                deleted = await provider.purge_unconfigured(pools)
            except ProviderError as exc:
                log.warning("manager: provider %s could not purge unconfigured resources: %s", name, exc)
                continue
            log.info("manager: provider %s purged %d unconfigured resource(s) %s", name, len(deleted), deleted)

    async def _retire_dead_neighbours(self) -> None:
        """Retire managers on this host whose process is gone (killed, then restarted as us).

        Their heartbeat and leases would otherwise hold their pools for another lease period; a
        process that no longer exists on this machine is certainly not reconciling anything.
        """
        host = socket.gethostname()
        for manager_id, description in (await self.store.manager_descriptions()).items():
            their_host, _, pid = description.rpartition(":")
            if manager_id == self.manager_id or their_host != host or not pid.isdigit() or _pid_alive(int(pid)):
                continue
            log.info(
                "manager %s: retiring manager %s (%s), whose process is gone", self.manager_id, manager_id, description
            )
            await self.store.leases.release(list(self.reconcilers), manager_id)
            await self.store.retire(manager_id)

    async def _heartbeat(self) -> None:
        await self.store.heartbeat(self.manager_id, _description(), HEARTBEAT_TTL, time.time())
        freed = await self.store.slots.reap()
        if freed:
            log.info("manager %s: freed %d clone slots of managers that died", self.manager_id, freed)

    async def _pool_loop(self, reconciler: PoolReconciler, stop: asyncio.Event, first_pass_after: float = 0.0) -> None:
        name = reconciler.ctx.name
        pace = _Pace(reconciler.ctx.policy)

        async def one_pass() -> None:
            if not self.leases.holds(name):
                # another manager reconciles this pool; look again soon in case it goes away
                pace.look_again(min(WAKE_POLL_SECONDS, self.leases.lease_seconds / 3))
                return
            started = time.monotonic()
            # announced changes (and any time events may have been missed) need a full pass
            quiet = self.wakeups.listening and not self.wakeups.flags[name].is_set()
            self.wakeups.before_pass(name)
            changed = False
            try:
                changed = await reconciler.run_once(quiet=quiet)
            except LeaseLost as exc:
                log.warning("pool %s: %s; stopping this pass", name, exc)
            finally:
                # a pass that failed (Redis down, a bug the cadence reports) slows the pace like an idle one
                pace.after_pass(changed)
            log.debug("pool %s: pass took %.3fs", name, time.monotonic() - started)

        async def pool_sleep(seconds: float, stop: asyncio.Event) -> None:
            if pace.wakeable:
                await self._sleep(name, seconds, stop)
            else:
                await wait(stop, seconds)

        await every(
            pace.next_delay,
            stop,
            one_pass,
            name=f"pool {name}",
            label=name,
            metrics=self.metrics,
            sleep=pool_sleep,
            first_after=first_pass_after,
        )

    async def _sleep(self, pool: str, delay: float, stop: asyncio.Event) -> None:
        if self.wakeups.listening:
            await self.wakeups.sleep(pool, delay, stop)
            return
        # no event subscription right now: poll a cheap fingerprint of the pool instead
        try:
            before = await self.store.fingerprint(pool)
        except StoreError:
            await wait(stop, delay)
            return
        deadline = time.monotonic() + delay
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self.wakeups.sleep(pool, min(WAKE_POLL_SECONDS, remaining), stop)
            if self.wakeups.flags[pool].is_set():
                return
            try:
                if await self.store.fingerprint(pool) != before:
                    return
            except StoreError:
                continue


class _Pace:
    """A pool loop's adaptive delay: the minimum after a pass that changed something, growing by the
    decay towards the maximum while passes change nothing."""

    def __init__(self, policy: PoolPolicy) -> None:
        self.policy = policy
        self.delay = policy.loop_delay_min
        self.wakeable = True
        self._next = self.delay

    def after_pass(self, changed: bool) -> None:
        policy = self.policy
        self.delay = (
            policy.loop_delay_min if changed else min(self.delay * policy.loop_delay_decay, policy.loop_delay_max)
        )
        self._next, self.wakeable = self.delay, True

    def look_again(self, seconds: float) -> None:
        """The pass was skipped: wait ``seconds``, not woken by the pool's events (which are not ours)."""
        self._next, self.wakeable = seconds, False

    def next_delay(self) -> float:
        return self._next


def _description() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True

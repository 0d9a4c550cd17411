"""The manager's upkeep of the event stream and audit trail: ``vm.expiring`` warnings, age trimming."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from vmpooler.config import Settings
from vmpooler.store.redis import Store

#: how often the running VMs' deadlines are looked at for ``vm.expiring``: one pipelined ZRANGEBYSCORE per pool
EXPIRING_SECONDS = 10.0
#: how often old events and audit entries are trimmed (MINID ~ drops whole stream nodes: cheap)
TRIM_SECONDS = 300.0


class EventKeeper:
    """``run_once`` is one round (a test calls it with its own clock); the manager runs it every
    EXPIRING_SECONDS (manager/cadence.py)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        pools: Callable[[], Sequence[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        cfg = settings.config
        self.store = store
        #: the pools this manager reconciles now (its leases): each pool is warned of by one manager
        self.pools = pools
        self.clock = clock
        self.lead_seconds = cfg.events_expiring_minutes * 60
        self.events_max_age = cfg.events_max_age_hours * 3600
        self.audit_retention = cfg.audit_retention_days * 86400
        self._trimmed_at = -TRIM_SECONDS

    async def run_once(self) -> list[str]:
        """Write the ``vm.expiring`` events due now; trim when TRIM_SECONDS have passed. Returns the VMs warned of."""
        now = self.clock()
        warned: list[str] = []
        if self.lead_seconds > 0:
            warned = await self.store.eventlog.warn_expiring(self.pools(), now, self.lead_seconds)
        if time.monotonic() - self._trimmed_at >= TRIM_SECONDS:
            self._trimmed_at = time.monotonic()
            await self.store.eventlog.trim(self.events_max_age, now)
            await self.store.audit_trail.trim(self.audit_retention, now)
        return warned

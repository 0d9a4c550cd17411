"""When a pool loop may skip a pass's Redis reads: nothing announced, nothing due, the same VMs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store.pool_view import PoolView
from vmpooler.store.redis import Store

#: a quiet pool still gets a full pass after this many skipped ones, in case a change came that no
#: event announced and the sizes do not show (a hand edit, another vmpooler writing the same Redis)
FULL_PASS_EVERY = 30
#: the shared census of set sizes is read again when older than this
CENSUS_MAX_AGE = 5.0
#: quarantined VMs wait for their hours (next_due) or an operator (whose change is announced)
_SETTLED_STATES = (VMState.READY, VMState.RUNNING, VMState.QUARANTINE, VMState.SUSPENDED)


class Census:
    """Every pool's state-set sizes in one round trip, shared by all pool loops of a manager."""

    def __init__(self, store: Store, pools: Sequence[str], max_age: float = CENSUS_MAX_AGE) -> None:
        self.store = store
        self.pools = list(pools)
        self.max_age = max_age
        self._counts: dict[str, dict[VMState, int]] = {}
        self._read_at = -max_age
        self._lock = asyncio.Lock()

    async def counts(self, pool: str) -> tuple[dict[VMState, int], float]:
        """The pool's set sizes, and when (``time.monotonic()``) they were read."""
        async with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                read_at = time.monotonic()
                self._counts = await self.store.counts(self.pools)
                self._read_at = read_at
        return self._counts[pool], self._read_at


class QuietPool:
    """What a pool looked like after its last full pass, if that pass found it settled."""

    def __init__(self) -> None:
        self.members: frozenset[str] | None = None
        self.counts: dict[VMState, int] = {}
        #: when (``time.monotonic()``) the last full pass found the pool settled
        self.settled_at = 0.0
        self.skipped = 0

    def settle(self, view: PoolView, changed: bool, busy: bool, level: int) -> None:
        """After a full pass: settled when it changed nothing, has nothing in flight, only ready and
        running VMs, and exactly ``level`` ready (a pool short of VMs waits on a breaker, a quota or a
        clone slot, which a later pass must look at again)."""
        unsettled = any(view.members[s] for s in LIVE_STATES if s not in _SETTLED_STATES)
        if changed or busy or unsettled or view.count(VMState.READY) != level:
            self.members = None
            return
        self.members = frozenset().union(*(view.members[s] for s in _SETTLED_STATES))
        self.counts = {state: view.count(state) for state in LIVE_STATES}
        self.settled_at = time.monotonic()
        self.skipped = 0

    def contradicted_by(self, counts: dict[VMState, int], read_at: float) -> bool:
        """A census read after the pool settled that shows other set sizes (one read before it says
        nothing: the full pass since has seen more)."""
        return read_at > self.settled_at and counts != self.counts

    def forget(self) -> None:
        self.members = None

    def may_skip(self, now: float, next_due: float) -> bool:
        return self.members is not None and self.skipped < FULL_PASS_EVERY and now < next_due

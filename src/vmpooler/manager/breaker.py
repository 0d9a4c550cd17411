"""A per-pool circuit breaker: after repeated clone failures stop cloning, back off, then probe once."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # cloning normally
    OPEN = "open"  # failing: no clones until ``retry_at``
    PROBING = "probing"  # one trial clone is in flight; its outcome closes or re-opens the breaker


@dataclass
class CircuitBreaker:
    """Stops a pool from hammering a provider that keeps failing (a bad template, a full datastore).

    Several clones run at once, so outcomes arrive out of order; the breaker only needs "a clone
    worked" and "a clone failed". ``threshold`` consecutive failures open it; a permanent failure
    (retrying cannot help) opens it at once. While open, no clone starts until the backoff has
    passed; then one probe clone may run. Its success closes the breaker; its failure re-opens it
    with the backoff doubled, up to ``max_backoff`` seconds.
    """

    enabled: bool = True
    threshold: int = 5
    base_backoff: float = 30.0
    max_backoff: float = 600.0
    clock: Callable[[], float] = field(default=lambda: 0.0)

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    backoff: float = 0.0
    retry_at: float = 0.0
    problem: str = ""

    def allow_clone(self) -> bool:
        """May a clone start now? Moves an expired open breaker to probing (one clone allowed)."""
        if self.state is BreakerState.CLOSED:
            return True
        now = self.clock()
        if now >= self.retry_at:
            # open and the backoff is over, or probing and the probe never reported back in a
            # whole backoff period (its VM was lost another way): let one more probe run
            self.state = BreakerState.PROBING
            self.retry_at = now + self.backoff
            return True
        return False

    def succeeded(self) -> bool:
        """A clone became ready. True when this closed an open breaker (the pool recovered)."""
        recovered = self.state is not BreakerState.CLOSED
        self.state, self.failures, self.backoff, self.problem = BreakerState.CLOSED, 0, 0.0, ""
        return recovered

    def failed(self, problem: str, permanent: bool = False) -> bool:
        """A clone failed. True when this opened (or re-opened) the breaker."""
        self.failures += 1
        self.problem = problem
        if not self.enabled:
            return False
        if self.state is BreakerState.OPEN:
            return False  # a clone started before the breaker opened: no new information
        if self.state is BreakerState.CLOSED and not permanent and self.failures < self.threshold:
            return False
        self.backoff = min(self.max_backoff, self.backoff * 2 if self.backoff else self.base_backoff)
        self.retry_at = self.clock() + self.backoff
        self.state = BreakerState.OPEN
        return True

    def trip(self, problem: str) -> bool:
        """Open now, whatever the clones did (the pool's VMs fail their hand-out checks). True when
        this opened it; an open breaker keeps its backoff."""
        if not self.enabled or self.state is BreakerState.OPEN:
            return False
        return self.failed(problem, permanent=True)

    @property
    def degraded(self) -> bool:
        return self.state is not BreakerState.CLOSED

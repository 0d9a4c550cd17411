"""Request counters for the API's rate limiter, shared through Redis by every API process.

Each limit is a fixed window anchored at the first request counted: the counter is created with the
period as its expiry and the window ends when Redis expires it. Redis's clock ends every window, so
several API processes agree on the budget without synchronised clocks, and a client waiting
``reset_in`` seconds is sure to get through. The price of a fixed window is a burst of up to twice
the limit across a window's end, which is fine for abuse protection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated
from vmpooler.store.scripts import load


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` requests per ``period`` seconds of one kind (``vm_creation``...) from one
    subject (``ip:<address>``, ``token:<hash>``)."""

    kind: str
    subject: str
    limit: int
    period: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Where one quota stands after a request was counted, or refused."""

    quota: Quota
    #: requests counted in the current window, this one included if it was allowed
    count: int
    #: seconds until the window ends
    reset_in: float

    @property
    def remaining(self) -> int:
        return max(0, self.quota.limit - self.count)

    @property
    def used_up(self) -> bool:
        return self.count >= self.quota.limit


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    usage: tuple[Usage, ...]


class RateLimitStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._hit = load(client, "ratelimit")

    async def hit(self, quotas: Sequence[Quota]) -> Verdict:
        """Count one request against every quota, or against none if any is already used up.

        One script call, atomic across the quotas; raises StoreUnavailable when Redis is down.
        """
        counters = [keys.rate_limit(q.kind, q.subject) for q in quotas]
        args = [value for q in quotas for value in (q.limit, q.period * 1000)]
        async with translated():
            allowed, *usage = await self._hit(keys=counters, args=args)
        return Verdict(
            bool(allowed),
            tuple(Usage(q, int(count), int(ms_left) / 1000) for q, (count, ms_left) in zip(quotas, usage, strict=True)),
        )

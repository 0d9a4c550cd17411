"""How long checkouts waited, per pool and hour, against the pool's autoscale target: SLO attainment
and burn rate for /status (the wait histogram itself is a Prometheus family)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmpooler.store import keys
from vmpooler.store.connection import Redis, translated

#: hours of counts kept (a week: the burn rate over a day needs one, the rest is for operators)
RETENTION_HOURS = 7 * 24
#: the share of checkouts a p95 target lets wait longer: the error budget the burn rate divides by
ERROR_BUDGET = 0.05


@dataclass(frozen=True, slots=True)
class Attainment:
    checkouts: int
    late: int

    @property
    def attainment(self) -> float:
        return 1 - self.late / self.checkouts if self.checkouts else 1.0

    @property
    def burn_rate(self) -> float:
        """How fast the error budget is spent: 1 spends exactly the 5 % a p95 target allows."""
        return (self.late / self.checkouts) / ERROR_BUDGET if self.checkouts else 0.0


class WaitStore:
    def __init__(self, client: Redis) -> None:
        self.client = client

    async def record(self, counts: Mapping[str, int], waited: float, targets: Mapping[str, float], now: float) -> None:
        """``counts[pool]`` VMs were checked out after ``waited`` seconds; pools without a target
        (not autoscaled) are not counted."""
        hour = int(now // 3600)
        async with translated(), self.client.pipeline(transaction=True) as pipe:
            for pool, count in counts.items():
                if pool not in targets:
                    continue
                key = keys.checkout_waits(pool)
                pipe.hincrby(key, f"n:{hour}", count)
                if waited > targets[pool]:
                    pipe.hincrby(key, f"late:{hour}", count)
                pipe.expire(key, RETENTION_HOURS * 3600)
            await pipe.execute()

    async def attainment(self, pools: Sequence[str], now: float, hours: int = 24) -> dict[str, Attainment]:
        """Each pool's checkouts and late ones over the last ``hours`` (this one included)."""
        last = int(now // 3600)
        fields = [f"{kind}:{h}" for h in range(last - hours + 1, last + 1) for kind in ("n", "late")]
        async with translated(), self.client.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.hmget(keys.checkout_waits(pool), fields)
            found = await pipe.execute() if pools else []
        out = {}
        for pool, values in zip(pools, found, strict=True):
            numbers = [int(v or 0) for v in values]
            out[pool] = Attainment(sum(numbers[0::2]), sum(numbers[1::2]))
        return out

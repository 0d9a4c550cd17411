"""Upper bounds on the numbers clients set (pool sizes, VM lifetimes), and numbers read back from Redis
defensively: a value stored out of range (by an older version, by hand, by the original) is clamped,
and garbage reads as the configured value, so no reply fails on stored data.
"""

from __future__ import annotations

from collections.abc import Mapping

from vmpooler.config import Settings
from vmpooler.store.records import LIFETIME_CEILING_HOURS

__all__ = ["LIFETIME_CEILING_HOURS", "lifetime_limit", "pool_sizes", "stored_int"]


def stored_int(raw: object, default: int, upper: int) -> int:
    """``raw`` (a Redis string) as an integer in ``0..upper``; ``default`` when it is not an integer."""
    try:
        value = int(str(raw).strip())
    except ValueError:
        return default
    return max(0, min(value, upper))


def lifetime_limit(settings: Settings) -> int:
    """The most hours a VM may live: ``max_lifetime_upper_limit``, or the ceiling without one."""
    limit = settings.config.max_lifetime_upper_limit
    return LIFETIME_CEILING_HOURS if limit is None else min(limit, LIFETIME_CEILING_HOURS)


def pool_sizes(settings: Settings, overrides: Mapping[str, str]) -> dict[str, int]:
    """Every configured pool's size: its size override (``POST /config/poolsize``) when one is stored,
    within ``max_pool_size``, else its configured size."""
    upper = settings.config.max_pool_size
    return {
        pool.name: stored_int(overrides[pool.name], pool.size, upper) if pool.name in overrides else pool.size
        for pool in settings.pools
    }

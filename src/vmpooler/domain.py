"""Pure data types shared by the store, the manager, the providers and the API; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PoolTarget:
    """What a provider needs to know about a pool to act on it (no Redis, no service settings)."""

    name: str
    template: str
    provider_options: dict[str, Any] = field(default_factory=dict)
    """Every per-pool key the core does not interpret (folder, datastore, memory, ...)."""


@dataclass(frozen=True, slots=True)
class VMInfo:
    """A VM as the provider sees it."""

    name: str
    pool: str
    template: str = ""
    hostname: str | None = None
    ip: str | None = None
    powered_on: bool = True
    boot_time: float | None = None
    host: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checkout:
    """One VM handed out: the name requested (pool or alias), the pool it came from, its name, and
    whether that pool is a fallback of the one requested (the requested one was degraded or empty)."""

    requested: str
    pool: str
    hostname: str
    fallback: bool = False

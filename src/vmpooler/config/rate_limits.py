"""The ``:rate_limits:`` section (what each limit counts is in ``vmpooler.api.middleware.ratelimit``), validated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError

from vmpooler.config.problems import describe
from vmpooler.errors import ConfigError

if TYPE_CHECKING:
    from vmpooler.config.settings import Settings

__all__ = ["Limit", "RateLimits", "enabled_limits"]


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(ge=1)
    period: int = Field(60, ge=1)  # seconds


class RateLimits(BaseModel):
    """The ``:rate_limits:`` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    global_per_ip: Limit = Limit(limit=100)
    authenticated: Limit = Limit(limit=500)
    vm_creation: Limit = Limit(limit=20)
    vm_deletion: Limit = Limit(limit=50)
    token_creation: Limit = Limit(limit=10)
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


def enabled_limits(settings: Settings) -> RateLimits | None:
    """The validated limits when rate limiting is on, else None; raises ConfigError naming a bad key."""
    try:
        limits = RateLimits.model_validate(settings.rate_limits or {})
    except ValidationError as exc:
        raise ConfigError(describe(exc, ("rate_limits",), wording="pydantic", model=RateLimits)) from exc
    return limits if limits.enabled or settings.config.rate_limiting_enabled else None

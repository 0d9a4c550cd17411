"""The typed settings: the whole configuration (``Settings``), one pool, one DNS entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)

from vmpooler.config.autoscale import AutoscaleSettings
from vmpooler.config.globals import GlobalSettings
from vmpooler.config.handout import HandoutCheck
from vmpooler.config.redis import RedisSettings
from vmpooler.config.waiting import Priorities, Quotas
from vmpooler.config.webhooks import WebhookSettings
from vmpooler.domain import PoolTarget
from vmpooler.metrics.sections import GraphiteSection, PrometheusSection, StatsdSection

__all__ = ["INHERITED", "DnsConfig", "PoolSettings", "Settings"]


#: pool key -> the :config: key it inherits from when the pool leaves it out
INHERITED: Final = {
    "timeout": "timeout",
    "timeout_notification": "timeout_notification",
    "ready_ttl": "ready_ttl",
    "check_loop_delay_min": "check_loop_delay_min",
    "check_loop_delay_max": "check_loop_delay_max",
    "check_loop_delay_decay": "check_loop_delay_decay",
    "check_hostname_for_mismatch": "check_ready_vm_hostname_for_mismatch",
}


class PoolSettings(BaseModel):
    """One entry of ``:pools:``. Keys the core does not know go to ``provider_options``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="The pool's name: letters, digits, `_`, `.`, `-`."
    )
    template: str = Field(
        min_length=1, description="What the provider makes the pool's VMs from (a template path, an image, an AMI)."
    )
    size: int = Field(ge=0, description="How many ready VMs to keep.")
    alias: list[str] = Field(
        default_factory=list,
        description="Other names to check out from this pool by (a string or a list); a name several pools share "
        "draws from all of them.",
    )
    provider: str = Field(
        "dummy", description="The `:providers:` entry that makes the VMs; default: the only one configured, else dummy."
    )
    dns_plugin: str | None = Field(
        None, description="The `:dns_configs:` entry whose `domain` the pool's hostnames get."
    )
    domain: str | None = Field(
        None, description="The DNS domain of the pool's hostnames when no `dns_plugin` gives one."
    )
    clone_target: str | None = Field(None, description="Where this pool's VMs are made, instead of `:config:`'s.")
    # defaults equal GlobalSettings'; Settings replaces them with the :config: values (see INHERITED)
    timeout: int = Field(15, ge=1, description="Minutes; see `:config:` `timeout`.")
    timeout_notification: int = Field(5, ge=0, description="Minutes; accepted for compatibility.")
    ready_ttl: int = Field(60, ge=1, description="Minutes; see `:config:` `ready_ttl`.")
    check_loop_delay_min: float = Field(5.0, gt=0, description="Seconds; see `:config:`.")
    check_loop_delay_max: float = Field(60.0, gt=0, description="Seconds; see `:config:`.")
    check_loop_delay_decay: float = Field(2.0, ge=1, description="See `:config:`.")
    check_hostname_for_mismatch: bool = Field(True, description="Accepted for compatibility; not used.")
    autoscale: AutoscaleSettings | None = Field(
        None, description="Size the pool to a wait target instead of `size` (see the autoscale page)."
    )
    handout_check: HandoutCheck | None = Field(
        None, description="A check each VM must pass at checkout, before the reply (see docs/health.md)."
    )
    quarantine_hours: float = Field(
        24, ge=0, le=8760, description="Hours a VM that failed its hand-out check is kept before it is destroyed."
    )
    suspended: int = Field(
        0,
        ge=0,
        le=1000,
        description="VMs kept suspended besides the ready ones, resumed first when those fall short "
        "(docs/fast-clones.md); the provider must be able to suspend.",
    )
    fallback: list[str] = Field(
        default_factory=list, description="Pools that serve this pool's checkouts while it is degraded or empty."
    )
    fallback_after_s: float = Field(
        0, ge=0, le=300, description="Seconds a checkout waits for this pool, when empty, before its fallback serves."
    )
    provider_options: dict[str, Any] = Field(
        default_factory=dict, description="Every other key of the pool, for its provider."
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_provider_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = {key: value for key, value in data.items() if key in cls.model_fields}
        extra = {key: value for key, value in data.items() if key not in cls.model_fields}
        if extra:
            given = known.get("provider_options")
            known["provider_options"] = {**given, **extra} if isinstance(given, Mapping) else extra
        return known

    #: the original reports an alias in the form it was configured: one string, or a list
    _alias_is_string: bool = PrivateAttr(default=False)

    @field_validator("alias", mode="before")
    @classmethod
    def _alias_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="wrap")
    @classmethod
    def _remember_alias_form(cls, data: Any, handler: ModelWrapValidatorHandler[PoolSettings]) -> PoolSettings:
        pool = handler(data)
        if isinstance(data, Mapping) and isinstance(data.get("alias"), str):
            pool._alias_is_string = True
        return pool

    @property
    def alias_as_configured(self) -> str | list[str]:
        """The alias as the configuration gave it (``/status`` and ``/poolstat`` report it so)."""
        if self._alias_is_string and len(self.alias) == 1:
            return self.alias[0]
        return list(self.alias)

    def target(self) -> PoolTarget:
        return PoolTarget(self.name, self.template, dict(self.provider_options))

    def inherit(self, config: GlobalSettings) -> PoolSettings:
        """A copy whose unset inheritable keys take ``config``'s values."""
        update = {key: getattr(config, source) for key, source in INHERITED.items()}
        return self.model_copy(update={k: v for k, v in update.items() if k not in self.model_fields_set})


class DnsConfig(BaseModel):
    """One entry of ``:dns_configs:``; plugin-specific keys are kept as extras."""

    model_config = ConfigDict(extra="allow")

    dns_class: str = Field(
        "dynamic-dns", description="The DNS plugin; `dynamic-dns` manages no records (names resolve by other means)."
    )
    domain: str | None = Field(None, description="The domain of the hostnames of the pools using this entry.")


class Settings(BaseModel):
    """The whole validated configuration."""

    model_config = ConfigDict(extra="ignore")

    config: GlobalSettings = Field(default_factory=GlobalSettings, description="Service-wide settings.")
    pools: list[PoolSettings] = Field(
        default_factory=list, description="The pools: each a name, a template, a size and a provider."
    )
    providers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Each provider's settings, by the name pools use."
    )
    redis: RedisSettings = Field(
        default_factory=RedisSettings,
        description="Where the data lives; without this section, `vmpooler serve` runs a private Redis of its own.",
    )
    auth: dict[str, Any] | None = Field(
        None,
        description="Who may take a token: `provider: ldap` (with `:ldap:`) or `dummy`; without it no token is needed.",
    )
    tagfilter: dict[str, str] = Field(
        default_factory=dict,
        description="Tag name to a regular expression: a value given to that tag becomes what its groups capture.",
    )
    dns_configs: dict[str, DnsConfig] = Field(
        default_factory=dict, description="Named DNS settings; each pool picks one with `dns_plugin`."
    )
    statsd: StatsdSection | None = Field(
        None, description="Also send metrics to StatsD (UDP): `server`, `port` (8125), `prefix` (`vmpooler`)."
    )
    graphite: GraphiteSection | None = Field(
        None,
        description="Also send metrics to Graphite (plaintext TCP): `server`, `port` (2003), `prefix` (`vmpooler`).",
    )
    prometheus: PrometheusSection | None = Field(
        None,
        description="Prometheus metrics are always served: `prometheus_prefix` (`vmpooler`) names them, "
        "`prometheus_endpoint` (`/prometheus`) is where.",
    )
    graphs: dict[str, Any] | None = Field(
        None, description="Accepted for compatibility (the original dashboard's Graphite); history is kept in Redis."
    )
    tracing: dict[str, Any] | None = Field(
        None, description="Accepted for compatibility (the original's OpenTelemetry tracing); not used."
    )
    rate_limits: dict[str, Any] | None = Field(
        None, description="Request limits (below); on with `enabled: true` here or `:config: rate_limiting_enabled`."
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="Where lifecycle events are POSTed, signed (see docs/webhooks.md)."
    )
    priorities: Priorities = Field(
        default_factory=Priorities,
        description="Owners' weights in the fair order of checkouts that wait (docs/waiting.md); equal by default.",
    )
    quotas: Quotas = Field(
        default_factory=Quotas,
        description="Checked-out VMs each owner may hold, overall and per pool; none by default.",
    )

    #: whether the configuration has a ``:pools:`` section; without one the pools are read from Redis
    _pools_configured: bool = PrivateAttr(default=True)
    #: set on the copy whose pools were read from Redis (then they are never written back)
    _pools_from_redis: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_pools_given(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        settings = handler(data)
        # as the original: no `:pools:` (or a null one) means "read them from Redis"; an empty list does not
        settings._pools_configured = not isinstance(data, Mapping) or data.get("pools") is not None
        return settings

    @property
    def pools_configured(self) -> bool:
        return self._pools_configured

    @property
    def pools_from_redis(self) -> bool:
        return self._pools_from_redis

    def with_stored_pools(self, pools: list[PoolSettings]) -> Settings:
        """A copy serving ``pools``, read from Redis (see ``vmpooler.config.stored_pools``)."""
        copy = self.model_copy(update={"pools": [pool.inherit(self.config) for pool in pools]})
        copy._pools_from_redis = True
        return copy

    @model_validator(mode="after")
    def _inherit_pool_settings(self) -> Settings:
        self.pools = [pool.inherit(self.config) for pool in self.pools]
        return self

    def pool(self, name: str) -> PoolSettings | None:
        return next((pool for pool in self.pools if pool.name == name), None)

    def pools_for(self, name_or_alias: str) -> list[PoolSettings]:
        """The pool of that name, or every pool with that alias, in configuration order."""
        pool = self.pool(name_or_alias)
        if pool is not None:
            return [pool]
        return [pool for pool in self.pools if name_or_alias in pool.alias]

    def domain_for(self, pool: PoolSettings) -> str | None:
        dns = self.dns_configs.get(pool.dns_plugin) if pool.dns_plugin else None
        if dns is not None and dns.domain:
            return dns.domain
        return pool.domain or self.config.domain

    def provider_options(self, provider_name: str) -> dict[str, Any]:
        return dict(self.providers.get(provider_name) or {})

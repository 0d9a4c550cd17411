"""Loads vmpooler's YAML configuration once, at start-up, into typed settings; errors name the key path.

Notes for operators and readers:

* Files written for the original are read as they are: top-level keys may be Ruby symbols
  (``:config:``) or plain (``config:``); symbol keys nested in mappings (``:auth:`` → ``:ldap:``,
  ``:providers:`` → ``:vsphere:``) are read the same way. An old top-level ``:vsphere:`` section
  is read as ``providers.vsphere``.
* Source order (``load_settings``): an explicit path; else ``VMPOOLER_CONFIG`` (YAML text); else
  the file named by ``VMPOOLER_CONFIG_FILE``; else ``./vmpooler.yaml`` if present; else an empty
  configuration (no pools).
* ``extra_config`` (or ``EXTRA_CONFIG``) lists further YAML files, comma-separated, deep-merged
  over the main one in order; relative paths are resolved against the main file's directory.
  Mappings merge key by key, ``pools`` merge by pool name, any other value is replaced.
* Environment overrides (``vmpooler.config_env``) win over every file.
* A pool that names no provider uses the only configured provider when exactly one
  ``:providers:`` section (or the old ``:vsphere:``) exists, else ``dummy``.
* Per-pool ``timeout``, ``timeout_notification``, ``ready_ttl``, ``check_loop_delay_*`` and
  ``check_hostname_for_mismatch`` that a pool leaves out are inherited from ``:config:`` when a
  ``Settings`` is validated, so on a loaded ``Settings`` they always hold the effective value.
* Every other per-pool key (folder, datastore, memory, ...) is kept, unchecked, in
  ``provider_options``: the pool's provider owns its meaning.
* ``:redis:`` (one server, a Sentinel group, TLS, an ACL user) is described in ``vmpooler.config_redis``;
  ``:config: api_tls_cert_file``/``api_tls_key_file`` make the API serve HTTPS.
* Unknown keys at the top level, in ``:config:`` and in ``:redis:`` are warnings, never errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from vmpooler import config_effect, config_env
from vmpooler.config_errors import translate
from vmpooler.config_global import _UPSTREAM_ONLY_KEYS, GlobalSettings
from vmpooler.config_redis import RedisSettings
from vmpooler.config_tls import pair_problems
from vmpooler.domain import PoolTarget
from vmpooler.errors import ConfigError

__all__ = [
    "DnsConfig",
    "GlobalSettings",
    "PoolSettings",
    "RedisSettings",
    "Settings",
    "evaluate_source",
    "load_settings",
    "parse_settings",
    "validate_file",
]


# pool key -> the :config: key it inherits from when the pool leaves it out
_INHERITED: Final = {
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
    # defaults equal GlobalSettings'; Settings replaces them with the :config: values (see _INHERITED)
    timeout: int = Field(15, ge=1, description="Minutes; see `:config:` `timeout`.")
    timeout_notification: int = Field(5, ge=0, description="Minutes; accepted for compatibility.")
    ready_ttl: int = Field(60, ge=1, description="Minutes; see `:config:` `ready_ttl`.")
    check_loop_delay_min: float = Field(5.0, gt=0, description="Seconds; see `:config:`.")
    check_loop_delay_max: float = Field(60.0, gt=0, description="Seconds; see `:config:`.")
    check_loop_delay_decay: float = Field(2.0, ge=1, description="See `:config:`.")
    check_hostname_for_mismatch: bool = Field(True, description="Accepted for compatibility; not used.")
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
        update = {key: getattr(config, source) for key, source in _INHERITED.items()}
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
    statsd: dict[str, Any] | None = Field(
        None, description="Also send metrics to StatsD (UDP): `server`, `port` (8125), `prefix` (`vmpooler`)."
    )
    graphite: dict[str, Any] | None = Field(
        None,
        description="Also send metrics to Graphite (plaintext TCP): `server`, `port` (2003), `prefix` (`vmpooler`).",
    )
    prometheus: dict[str, Any] | None = Field(
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
        """A copy serving ``pools``, read from Redis (see ``config_stored_pools``)."""
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


# where an unknown key earns a warning: section ("" = top level) -> the keys it knows
_KNOWN_KEYS: Final = {
    "": frozenset(Settings.model_fields) | {"vsphere"},
    "config": frozenset(GlobalSettings.model_fields) | {"purge_unconfigured_folders"} | _UPSTREAM_ONLY_KEYS,
    "redis": frozenset(RedisSettings.model_fields),
}


def parse_settings(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, *, base_dir: Path | None = None
) -> tuple[Settings, list[str]]:
    """Validate an already-parsed YAML document; returns ``(settings, warnings)``.

    ``env`` defaults to ``os.environ``; ``base_dir`` (default: the working directory) resolves
    relative ``extra_config`` paths. Raises ConfigError listing every problem found.
    """
    settings, problems, warnings = _evaluate(raw, os.environ if env is None else env, base_dir or Path.cwd())
    if settings is None or problems:
        raise ConfigError(problems)
    return settings, warnings


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """Find, read and validate the configuration (see the module notes for the source order)."""
    env = os.environ if env is None else env
    raw, base_dir = config_env.read_source(path, env)
    return parse_settings(raw, env, base_dir=base_dir)


def validate_file(path: str | Path, env: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Check a file offline exactly as start-up does; returns ``(errors, warnings)`` (see ``vmpooler.validate``)."""
    from vmpooler import validate  # it builds on this module; imported here to keep the old entry point

    return validate.validate_file(path, env)


def evaluate_source(path: str | Path | None, env: Mapping[str, str]) -> tuple[Settings | None, list[str], list[str]]:
    """Read and validate without raising: ``(settings or None, problems, warnings)``."""
    try:
        raw, base_dir = config_env.read_source(path, env)
    except ConfigError as exc:
        return None, exc.problems, []
    return _evaluate(raw, env, base_dir)


# --- evaluation -------------------------------------------------------------------------------------


def _evaluate(raw: Any, env: Mapping[str, str], base_dir: Path) -> tuple[Settings | None, list[str], list[str]]:
    """Everything ``parse_settings`` does, returning problems instead of raising."""
    problems: list[str] = []
    warnings: list[str] = []
    data, origins = config_env.assemble(raw, env, base_dir, problems, warnings)
    if data is None:
        return None, problems, warnings
    warnings += config_env.unknown_key_warnings(data, _KNOWN_KEYS)
    warnings += config_effect.notes(data, origins, env)
    problems += config_env.pool_reference_problems(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        return None, problems + translate(exc, (), origins), warnings
    problems += _semantic_problems(settings)
    return settings, problems, warnings


def _semantic_problems(settings: Settings) -> list[str]:
    problems = []
    delays = [("config", settings.config)] + [
        (f"pools[{i}]", pool)
        for i, pool in enumerate(settings.pools)
        # a pool inheriting both bounds repeats the :config: problem; report it once
        if (pool.check_loop_delay_min, pool.check_loop_delay_max)
        != (settings.config.check_loop_delay_min, settings.config.check_loop_delay_max)
    ]
    for where, item in delays:
        if item.check_loop_delay_min > item.check_loop_delay_max:
            problems.append(
                f"{where}.check_loop_delay_min: must not exceed check_loop_delay_max "
                f"({item.check_loop_delay_min:g} > {item.check_loop_delay_max:g})"
            )
    cfg = settings.config
    problems += [
        f"pools[{i}].size: {pool.size} is above config.max_pool_size ({cfg.max_pool_size})"
        for i, pool in enumerate(settings.pools)
        if pool.size > cfg.max_pool_size
    ]
    problems += pair_problems(
        "config.api_tls_cert_file", cfg.api_tls_cert_file, "config.api_tls_key_file", cfg.api_tls_key_file
    )
    problems += settings.redis.problems()
    for tag, pattern in settings.tagfilter.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"tagfilter.{tag}: not a valid regular expression: {exc}")
    return problems


# --- pydantic errors in the user's terms ------------------------------------------------------------

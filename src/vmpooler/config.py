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
* Unknown keys at the top level, in ``:config:`` and in ``:redis:`` are warnings, never errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from vmpooler import config_env
from vmpooler.domain import PoolTarget
from vmpooler.errors import ConfigError
from vmpooler.providers import registry

__all__ = [
    "DnsConfig",
    "GlobalSettings",
    "PoolSettings",
    "RedisSettings",
    "Settings",
    "check_providers",
    "load_settings",
    "parse_settings",
    "validate_file",
]


class RedisSettings(BaseModel):
    """The ``:redis:`` section. ``server`` None means the service starts an embedded Redis."""

    model_config = ConfigDict(extra="ignore")

    server: str | None = None
    port: int = Field(6379, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    db: int = Field(0, ge=0)
    tls: bool = False
    data_ttl: int = Field(168, ge=1)  # hours a destroyed VM's record is kept
    connection_pool_size: int = Field(10, ge=1)
    connection_pool_timeout: int = Field(5, ge=1)
    reconnect_attempts: int = Field(10, ge=0)
    socket_timeout: float = Field(5.0, gt=0)  # seconds; no Redis call waits longer

    def password_value(self) -> str | None:
        return self.password.get_secret_value() if self.password else None


class GlobalSettings(BaseModel):
    """The ``:config:`` section; durations are in the original's units (noted per key)."""

    model_config = ConfigDict(extra="ignore")

    site_name: str = "vmpooler"
    logfile: str | None = None
    task_limit: int = Field(10, ge=1)
    ondemand_clone_limit: int = Field(10, ge=1)
    max_ondemand_instances_per_request: int = Field(10, ge=1)
    ondemand_request_ttl: int = Field(5, ge=1)  # minutes
    timeout: int = Field(15, ge=1)  # minutes
    timeout_notification: int = Field(5, ge=0)  # minutes
    max_vm_retries: int = Field(3, ge=0)
    vm_checktime: int = Field(1, ge=0)  # minutes
    vm_lifetime: int = Field(24, ge=0)  # hours
    vm_lifetime_auth: int | None = Field(None, ge=0)  # hours
    max_lifetime_upper_limit: int | None = Field(None, ge=0)  # hours
    ready_ttl: int = Field(60, ge=1)  # minutes
    prefix: str = ""
    allowed_tags: list[str] | None = None
    clone_target: str | None = None
    migration_limit: int | None = Field(None, ge=0)
    max_tries: int = Field(3, ge=1)
    retry_factor: int = Field(10, ge=0)
    check_loop_delay_min: float = Field(5.0, gt=0)  # seconds
    check_loop_delay_max: float = Field(60.0, gt=0)  # seconds
    check_loop_delay_decay: float = Field(2.0, ge=1)
    experimental_features: bool = False
    usage_stats: bool = False
    request_logger: bool = False
    log_format: Literal["plain", "json"] = "plain"  # ours: JSON lines for log shippers
    rate_limiting_enabled: bool = False  # the limits are in the top-level :rate_limits: (vmpooler.api.ratelimit)
    extra_config: str | None = None
    backend_weight: dict[str, int] = Field(default_factory=dict)
    purge_unconfigured_resources: bool = Field(
        False, validation_alias=AliasChoices("purge_unconfigured_resources", "purge_unconfigured_folders")
    )
    domain: str | None = None  # deprecated v1 key; a dns_configs entry is the v3 way
    check_ready_vm_hostname_for_mismatch: bool = True
    # vSphere-only, read by that provider
    create_folders: bool = False
    create_template_delta_disks: bool = False
    create_linked_clones: bool = True
    manage_host_selection: bool = False
    host_selection_max_age: int = Field(60, ge=0)
    utilization_limit: int = Field(90, ge=0, le=100)


# :config: keys of upstream 3.8+/3.9 features (dead-letter queues, the stale-queue purger, health
# checks, provider resilience) that this implementation does not have: accepted without a warning
_UPSTREAM_ONLY_KEYS: Final = frozenset(
    # one word list reads better here than 24 one-per-line strings
    """dlq_enabled dlq_ttl dlq_max_entries purge_enabled purge_dry_run purge_interval max_pending_age
    max_ready_age max_completed_age max_orphaned_age health_check_enabled health_check_interval
    health_thresholds circuit_breaker_enabled circuit_breaker_failure_threshold circuit_breaker_timeout
    circuit_breaker_half_open_attempts adaptive_timeout_enabled connection_pool_timeout_min
    connection_pool_timeout_max connection_pool_timeout_initial connection_pool_monitor_enabled
    connection_pool_monitor_interval""".split()
)

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

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    template: str = Field(min_length=1)
    size: int = Field(ge=0)
    alias: list[str] = Field(default_factory=list)
    provider: str = "dummy"
    dns_plugin: str | None = None
    domain: str | None = None
    clone_target: str | None = None
    # defaults equal GlobalSettings'; Settings replaces them with the :config: values (see _INHERITED)
    timeout: int = Field(15, ge=1)
    timeout_notification: int = Field(5, ge=0)
    ready_ttl: int = Field(60, ge=1)
    check_loop_delay_min: float = Field(5.0, gt=0)
    check_loop_delay_max: float = Field(60.0, gt=0)
    check_loop_delay_decay: float = Field(2.0, ge=1)
    check_hostname_for_mismatch: bool = True
    provider_options: dict[str, Any] = Field(default_factory=dict)

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

    @field_validator("alias", mode="before")
    @classmethod
    def _alias_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    def target(self) -> PoolTarget:
        return PoolTarget(self.name, self.template, dict(self.provider_options))

    def inherit(self, config: GlobalSettings) -> PoolSettings:
        """A copy whose unset inheritable keys take ``config``'s values."""
        update = {key: getattr(config, source) for key, source in _INHERITED.items()}
        return self.model_copy(update={k: v for k, v in update.items() if k not in self.model_fields_set})


class DnsConfig(BaseModel):
    """One entry of ``:dns_configs:``; plugin-specific keys are kept as extras."""

    model_config = ConfigDict(extra="allow")

    dns_class: str = "dynamic-dns"
    domain: str | None = None


class Settings(BaseModel):
    """The whole validated configuration."""

    model_config = ConfigDict(extra="ignore")

    config: GlobalSettings = Field(default_factory=GlobalSettings)
    pools: list[PoolSettings] = Field(default_factory=list)
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: dict[str, Any] | None = None
    tagfilter: dict[str, str] = Field(default_factory=dict)
    dns_configs: dict[str, DnsConfig] = Field(default_factory=dict)
    statsd: dict[str, Any] | None = None
    graphite: dict[str, Any] | None = None
    prometheus: dict[str, Any] | None = None
    graphs: dict[str, Any] | None = None
    tracing: dict[str, Any] | None = None
    rate_limits: dict[str, Any] | None = None

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
    """Check a file offline, including each provider's options; returns ``(errors, warnings)``."""
    env = os.environ if env is None else env
    try:
        raw, base_dir = config_env.read_source(path, env)
    except ConfigError as exc:
        return exc.problems, []
    settings, problems, warnings = _evaluate(raw, env, base_dir)
    if settings is not None:
        problems += check_providers(settings)
    return problems, warnings


def check_providers(settings: Settings) -> list[str]:
    """Problems with the providers the configuration uses: missing classes and invalid options."""
    problems: list[str] = []
    where_named = {name: f"providers.{name}" for name in settings.providers}
    for i, pool in enumerate(settings.pools):
        where_named.setdefault(pool.provider, f"pools[{i}].provider")
    for name, where in where_named.items():
        options = settings.provider_options(name)
        provider_class = str(options.get("provider_class") or name)
        try:
            cls = registry.load(provider_class)
        except ConfigError as exc:
            problems += [f"{where}: {problem.removeprefix('providers: ')}" for problem in exc.problems]
            continue
        except (ImportError, AttributeError) as exc:
            problems.append(f"{where}: provider class {provider_class!r} failed to load: {exc}")
            continue
        try:
            cls.options_model.model_validate(options)
        except ValidationError as exc:
            problems += _translate(exc, ("providers", name), {})
    return problems


# --- evaluation -------------------------------------------------------------------------------------


def _evaluate(raw: Any, env: Mapping[str, str], base_dir: Path) -> tuple[Settings | None, list[str], list[str]]:
    """Everything ``parse_settings`` does, returning problems instead of raising."""
    problems: list[str] = []
    warnings: list[str] = []
    data, origins = config_env.assemble(raw, env, base_dir, problems, warnings)
    if data is None:
        return None, problems, warnings
    warnings += config_env.unknown_key_warnings(data, _KNOWN_KEYS)
    problems += config_env.pool_reference_problems(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        return None, problems + _translate(exc, (), origins), warnings
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
    for tag, pattern in settings.tagfilter.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"tagfilter.{tag}: not a valid regular expression: {exc}")
    return problems


# --- pydantic errors in the user's terms ------------------------------------------------------------

_MESSAGES: Final = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_too_short": "must not be empty",
}
_BOUNDS: Final = {  # pydantic error type -> (symbol, its ctx key)
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def _translate(exc: ValidationError, prefix: tuple[str | int, ...], origins: Mapping[str, str]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        path = _path((*prefix, *error["loc"]))
        problem = f"{path}: {_message(error)}"
        if path in origins:
            problem += f" (from environment variable {origins[path]})"
        problems.append(problem)
    return problems


def _message(error: ErrorDetails) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error.get("input"))
    if kind == "missing":
        return "required"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"must be {symbol} {_show(ctx[key])}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}, got {got}"
    if kind == "string_too_short":
        return _MESSAGES[kind]
    return f"{_MESSAGES.get(kind, error['msg'])}, got {got}"


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a bound of gt=0 on a float field reads "> 0", not "> 0.0"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

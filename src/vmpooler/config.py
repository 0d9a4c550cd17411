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
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from vmpooler import config_env
from vmpooler.config_redis import RedisSettings
from vmpooler.config_tls import pair_problems
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


class GlobalSettings(BaseModel):
    """The ``:config:`` section; durations are in the original's units (noted per key)."""

    model_config = ConfigDict(extra="ignore")

    site_name: str = Field("vmpooler", description="The name the dashboard shows in its header.")
    logfile: str | None = Field(None, description="Also write the log to this file (it always goes to stderr).")
    task_limit: int = Field(
        10, ge=1, description="Clones in flight at once, over every pool and every manager on the Redis."
    )
    ondemand_clone_limit: int = Field(10, ge=1, description="On-demand clones in flight at once.")
    max_ondemand_instances_per_request: int = Field(
        10, ge=1, description="The most VMs of one pool an on-demand request may ask for."
    )
    ondemand_request_ttl: int = Field(
        5, ge=1, description="Minutes an on-demand request may wait for its VMs; then it fails and returns them."
    )
    timeout: int = Field(
        15, ge=1, description="Minutes a new VM may take to clone and boot; then it is marked failed and destroyed."
    )
    timeout_notification: int = Field(
        5, ge=0, description="Minutes; accepted for compatibility (the original warns this long before `timeout`)."
    )
    max_vm_retries: int = Field(
        3, ge=0, description="An on-demand request fails after more than this many failed clones in one of its pools."
    )
    vm_checktime: int = Field(1, ge=0, description="Minutes between checks that a ready VM still answers.")
    vm_lifetime: int = Field(
        24, ge=0, description="Hours a checked-out VM lives unless it has a lifetime of its own (0: no limit)."
    )
    vm_lifetime_auth: int | None = Field(
        None, ge=0, description="Hours of lifetime a VM checked out with a token gets (else `vm_lifetime` applies)."
    )
    max_lifetime_upper_limit: int | None = Field(
        None, ge=0, description="The most hours `PUT /vm/<host>` may set as a lifetime (none: no limit)."
    )
    ready_ttl: int = Field(
        60, ge=1, description="Minutes a VM may stay ready and unused; then it is replaced by a fresh one."
    )
    prefix: str = Field("", description="Put in front of every new VM's name.")
    allowed_tags: list[str] | None = Field(None, description="When set, the only tag names `PUT /vm/<host>` accepts.")
    clone_target: str | None = Field(
        None,
        description="Where new VMs are made (a vSphere cluster, ...) for pools naming none; the provider reads it.",
    )
    migration_limit: int | None = Field(
        None, ge=0, description="Accepted for compatibility (vSphere migration at checkout); not used."
    )
    max_tries: int = Field(
        3, ge=1, description="Accepted for compatibility (the original's provider retries); not used."
    )
    retry_factor: int = Field(
        10, ge=0, description="Accepted for compatibility (the original's provider retries); not used."
    )
    check_loop_delay_min: float = Field(
        5.0, gt=0, description="Seconds between a pool's passes while they change something."
    )
    check_loop_delay_max: float = Field(
        60.0, gt=0, description="The longest pause, in seconds, between a quiet pool's passes."
    )
    check_loop_delay_decay: float = Field(
        2.0, ge=1, description="The pause between passes grows by this factor after each pass that changed nothing."
    )
    experimental_features: bool = Field(
        False, description="Turns on the API's routes that change pools at run time (`/config/*`, `/poolreset`)."
    )
    usage_stats: bool = Field(False, description="Count checkouts and returns per user (`vmpooler_usage_total`).")
    request_logger: bool = Field(False, description="Log every API request.")
    log_format: Literal["plain", "json"] = Field(
        "plain", description="Ours: log lines as plain text, or as JSON lines for log shippers."
    )
    api_tls_cert_file: str | None = None  # ours: the API serves HTTPS with this certificate (PEM)
    api_tls_key_file: str | None = None  # its private key, unless the certificate file holds it
    rate_limiting_enabled: bool = Field(False, description="Turns rate limiting on; the limits are in `:rate_limits:`.")
    extra_config: str | None = Field(
        None, description="More YAML files, comma-separated, merged over this one in order (paths relative to it)."
    )
    backend_weight: dict[str, int] = Field(
        default_factory=dict,
        description="For an alias of several pools: weight of each pool (by clone target or name; default 1) "
        "when choosing which to check out from; 0 puts a pool last.",
    )
    purge_unconfigured_resources: bool = Field(
        False,
        validation_alias=AliasChoices("purge_unconfigured_resources", "purge_unconfigured_folders"),
        description="Lets providers delete what they hold that no pool is configured for (each provider decides).",
    )
    domain: str | None = Field(
        None, description="Deprecated (removed in the original's v3): every pool's DNS domain; use `:dns_configs:`."
    )
    check_ready_vm_hostname_for_mismatch: bool = Field(
        True, description="Accepted for compatibility (the original retires a VM whose hostname differs); not used."
    )
    # vSphere-only, read by that provider
    create_folders: bool = Field(False, description="vSphere: create a pool's folder when it is missing.")
    create_template_delta_disks: bool = Field(
        False, description="vSphere: give each template delta disks, for linked clones."
    )
    create_linked_clones: bool = Field(True, description="vSphere: make linked clones rather than full ones.")
    manage_host_selection: bool = Field(False, description="vSphere: place each new VM on the least-used host.")
    host_selection_max_age: int = Field(
        60, ge=0, description="vSphere: seconds a reading of the hosts' use is reused for host selection."
    )
    utilization_limit: int = Field(
        90, ge=0, le=100, description="vSphere: percent of CPU or memory use above which a host is not chosen."
    )
    # a pool whose clones keep failing stops cloning and backs off (upstream 3.8's keys)
    circuit_breaker_enabled: bool = True
    circuit_breaker_failure_threshold: int = Field(5, ge=1)  # consecutive failed clones
    circuit_breaker_timeout: float = Field(30.0, gt=0)  # seconds of the first backoff; doubles per failed probe
    circuit_breaker_max_timeout: float = Field(600.0, gt=0)  # ours: the longest backoff, seconds
    # ours: several managers split the pools through leases in Redis of this many seconds
    manager_lease_seconds: float = Field(15.0, ge=3)


# :config: keys of upstream 3.8+/3.9 features (dead-letter queues, the stale-queue purger, health
# checks, adaptive timeouts) that this implementation does not have: accepted without a warning
_UPSTREAM_ONLY_KEYS: Final = frozenset(
    # one word list reads better here than 21 one-per-line strings
    """dlq_enabled dlq_ttl dlq_max_entries purge_enabled purge_dry_run purge_interval max_pending_age
    max_ready_age max_completed_age max_orphaned_age health_check_enabled health_check_interval
    health_thresholds circuit_breaker_half_open_attempts adaptive_timeout_enabled connection_pool_timeout_min
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
        description="Where the data lives; naming none, `vmpooler serve` runs a private Redis of its own.",
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
    cfg = settings.config
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

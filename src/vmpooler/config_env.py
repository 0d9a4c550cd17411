"""Turns YAML files and the environment into the raw mapping the settings models validate.

Covers where the configuration comes from, Ruby-symbol keys, extra files, old layouts, the
original's environment-variable overrides, and the checks that need only raw data (unknown keys,
references between pools). Problems are collected, never raised one by one.

Overrides follow lib/vmpooler.rb. A variable that is set and non-empty wins over the files (the
original treats an empty integer variable as unset; we do so for every variable, which is what
container environments that template every variable need). Values stay strings here: the models
coerce them, and ``origins`` lets an error name the variable a bad value came from.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from vmpooler.errors import ConfigError

DEFAULT_CONFIG_FILE: Final = "vmpooler.yaml"

_CONFIG_VARS: Final = {
    "SITE_NAME": "site_name",
    "DOMAIN": "domain",
    "PREFIX": "prefix",
    "LOGFILE": "logfile",
    "TASK_LIMIT": "task_limit",
    "MAX_ONDEMAND_INSTANCES_PER_REQUEST": "max_ondemand_instances_per_request",
    "ONDEMAND_CLONE_LIMIT": "ondemand_clone_limit",
    "MAX_VM_RETRIES": "max_vm_retries",
    "ONDEMAND_REQUEST_TTL": "ondemand_request_ttl",
    "VM_CHECKTIME": "vm_checktime",
    "VM_LIFETIME": "vm_lifetime",
    "VM_LIFETIME_AUTH": "vm_lifetime_auth",
    "MAX_LIFETIME_UPPER_LIMIT": "max_lifetime_upper_limit",
    "READY_TTL": "ready_ttl",
    "TIMEOUT": "timeout",
    "TIMEOUT_NOTIFICATION": "timeout_notification",
    "MAX_TRIES": "max_tries",
    "RETRY_FACTOR": "retry_factor",
    "CLONE_TARGET": "clone_target",
    "MIGRATION_LIMIT": "migration_limit",
    "CREATE_FOLDERS": "create_folders",
    "CREATE_TEMPLATE_DELTA_DISKS": "create_template_delta_disks",
    "CREATE_LINKED_CLONES": "create_linked_clones",
    # the deprecated name first, so the current one wins when both are set
    "PURGE_UNCONFIGURED_FOLDERS": "purge_unconfigured_resources",
    "PURGE_UNCONFIGURED_RESOURCES": "purge_unconfigured_resources",
    "USAGE_STATS": "usage_stats",
    "REQUEST_LOGGER": "request_logger",
    "EXPERIMENTAL_FEATURES": "experimental_features",
    "EXTRA_CONFIG": "extra_config",
}

_REDIS_VARS: Final = {
    "REDIS_SERVER": "server",
    "REDIS_PORT": "port",
    "REDIS_USERNAME": "username",
    "REDIS_PASSWORD": "password",
    "REDIS_DB": "db",
    "REDIS_DATA_TTL": "data_ttl",
    "REDIS_CONNECTION_POOL_SIZE": "connection_pool_size",
    "REDIS_CONNECTION_POOL_TIMEOUT": "connection_pool_timeout",
    "REDIS_RECONNECT_ATTEMPTS": "reconnect_attempts",
}

# Sections that exist only when configured: the first variable creates the section when it is set.
_OPTIONAL_SECTION_VARS: Final = {
    "statsd": {"STATSD_SERVER": "server", "STATSD_PREFIX": "prefix", "STATSD_PORT": "port"},
    "graphite": {"GRAPHITE_SERVER": "server", "GRAPHITE_PREFIX": "prefix", "GRAPHITE_PORT": "port"},
    "tracing": {"VMPOOLER_TRACING_ENABLED": "enabled", "VMPOOLER_TRACING_JAEGER_HOST": "jaeger_host"},
    "auth": {"AUTH_PROVIDER": "provider"},
}

_LDAP_VARS: Final = {
    "LDAP_HOST": "host",
    "LDAP_PORT": "port",
    "LDAP_BASE": "base",
    "LDAP_USER_OBJECT": "user_object",
}


def read_source(path: str | Path | None, env: Mapping[str, str]) -> tuple[Any, Path]:
    """The parsed YAML document and the directory relative extra files resolve against."""
    if path is not None:
        return read_yaml_file(Path(path), "config file"), Path(path).resolve().parent
    text = env_value(env, "VMPOOLER_CONFIG")
    if text is not None:
        return _parse_yaml(text, "VMPOOLER_CONFIG"), Path.cwd()
    file_name = env_value(env, "VMPOOLER_CONFIG_FILE")
    if file_name is not None:
        return read_yaml_file(Path(file_name), "VMPOOLER_CONFIG_FILE"), Path(file_name).resolve().parent
    if Path(DEFAULT_CONFIG_FILE).is_file():
        return read_yaml_file(Path(DEFAULT_CONFIG_FILE), "config file"), Path.cwd()
    return {}, Path.cwd()


def read_yaml_file(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{what}: file not found: {path}"]) from None
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
        raise ConfigError([f"{what}: {path} is not UTF-8 text ({byte}); save it as UTF-8"]) from exc
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, label: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{label}: YAML syntax error{where}: {exc.problem or exc.context}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{label}: invalid YAML: {exc}"]) from exc


def assemble(
    raw: Any, env: Mapping[str, str], base_dir: Path, problems: list[str], warnings: list[str]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The mapping to validate (None when the top level is not a mapping) and the env ``origins``."""
    data = _normalised(raw, "top level", problems)
    if data is None:
        return None, {}
    extra = env_value(env, "EXTRA_CONFIG")
    if extra is None and isinstance(data.get("config"), Mapping):
        extra = data["config"].get("extra_config")
    if isinstance(extra, str) and extra.strip():
        _merge_extra_files(data, extra, base_dir, problems)
    origins, env_warnings = apply_env(data, env)
    warnings += env_warnings
    _apply_legacy_layout(data, warnings)
    return data, origins


def _normalised(raw: Any, label: str, problems: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(
            f"{label}: must be a mapping of sections, got {'a list' if isinstance(raw, list) else repr(raw)}"
        )
        return None
    return _unsymbol(raw, "", problems)


def _unsymbol(mapping: Mapping[Any, Any], path: str, problems: list[str]) -> dict[str, Any]:
    """A deep copy with Ruby-symbol keys (``:config``) read as plain ones; lists are copied as is."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = key
        if isinstance(key, str) and key.startswith(":"):
            # `:config:` in YAML is the key ":config"; quoted (':config:') it keeps both colons
            name = key[1:-1] if key.endswith(":") and len(key) > 2 else key[1:]
        full = f"{path}.{name}" if path else str(name)
        if name in out:
            problems.append(f"{full}: given twice (as :{name}: and {name}:); keep one")
        out[name] = _unsymbol(value, full, problems) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out


def _merge_extra_files(data: dict[str, Any], extra: str, base_dir: Path, problems: list[str]) -> None:
    for name in filter(None, (part.strip() for part in extra.split(","))):
        path = base_dir / Path(name).expanduser()
        try:
            raw = read_yaml_file(path, "config.extra_config")
        except ConfigError as exc:
            problems += exc.problems
            continue
        overlay = _normalised(raw, f"extra config {path}", problems)
        if overlay is not None:
            _deep_merge(data, overlay)


def _deep_merge(base: dict[str, Any], overlay: Mapping[str, Any], *, top: bool = True) -> None:
    for key, value in overlay.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _deep_merge(current, value, top=False)
        elif top and key == "pools" and isinstance(current, list) and isinstance(value, list):
            base[key] = _merge_pools(current, value)
        else:
            base[key] = value


def _merge_pools(pools: list[Any], overlay: list[Any]) -> list[Any]:
    # an extra file usually adds pools or adjusts one; matching by name lets it do both
    merged = list(pools)
    index = {p["name"]: i for i, p in enumerate(merged) if isinstance(p, dict) and isinstance(p.get("name"), str)}
    for pool in overlay:
        name = pool.get("name") if isinstance(pool, dict) else None
        found = index.get(name) if isinstance(name, str) else None
        if found is None:
            merged.append(pool)
        else:
            merged[found] = {**merged[found], **pool}
    return merged


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    value = env.get(name)
    return value if value else None


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Write every override into ``data`` in place.

    Returns ``(origins, warnings)``: origins maps a dotted key path (``config.task_limit``) to the
    variable that set it. A section that is present but not a mapping is left alone for the
    validator to report.
    """
    origins: dict[str, str] = {}
    warnings: list[str] = []

    def put(path: tuple[str, ...], table: Mapping[str, str], *, create: bool) -> None:
        section: Any = data
        for name in path:
            if not isinstance(section, dict):
                return
            if section.get(name) is None and create and _any_set(env, table):
                section[name] = {}
            section = section.get(name)
        if not isinstance(section, dict):
            return
        for var, key in table.items():
            value = env_value(env, var)
            if value is not None:
                section[key] = value
                origins[".".join((*path, key))] = var

    put(("config",), _CONFIG_VARS, create=True)
    put(("redis",), _REDIS_VARS, create=True)
    for section_name, table in _OPTIONAL_SECTION_VARS.items():
        first = next(iter(table))
        put((section_name,), table, create=env_value(env, first) is not None)

    if isinstance(data.get("auth"), dict):
        put(("auth", "ldap"), _LDAP_VARS, create=True)
    elif _any_set(env, _LDAP_VARS):
        warnings.append("LDAP_* environment variables are set but there is no :auth: section; ignored")
    if env_value(env, "PURGE_UNCONFIGURED_FOLDERS") is not None:
        warnings.append("PURGE_UNCONFIGURED_FOLDERS: deprecated environment variable, use PURGE_UNCONFIGURED_RESOURCES")
    return origins, warnings


def _any_set(env: Mapping[str, str], table: Mapping[str, str]) -> bool:
    return any(env_value(env, var) is not None for var in table)


def _apply_legacy_layout(data: dict[str, Any], warnings: list[str]) -> None:
    for key in [key for key, value in data.items() if value is None]:
        del data[key]  # an empty section (`:tagfilter:` and nothing under it) means "not configured"
    providers = data.setdefault("providers", {})
    if isinstance(providers, dict):
        if isinstance(data.get("vsphere"), Mapping) and "vsphere" not in providers:
            providers["vsphere"] = data["vsphere"]
            warnings.append("vsphere: old top-level provider section, read as providers.vsphere")
        for name, options in providers.items():
            if options is None:
                providers[name] = {}
        default = next(iter(providers)) if len(providers) == 1 else "dummy"
        for pool in data.get("pools") or []:
            if isinstance(pool, dict) and pool.get("provider") is None:
                pool["provider"] = default
    config = data.get("config")
    if isinstance(config, Mapping):
        if config.get("domain") is not None:
            warnings.append("config.domain: deprecated (removed in vmpooler v3); use a :dns_configs: entry")
        if "purge_unconfigured_folders" in config:
            warnings.append("config.purge_unconfigured_folders: deprecated, use purge_unconfigured_resources")
    auth = data.get("auth")
    if isinstance(auth, Mapping) and auth.get("provider") == "dummy":
        warnings.append("auth.provider: 'dummy' accepts any user whose password differs from the name")


def unknown_key_warnings(data: Mapping[str, Any], known_keys: Mapping[str, frozenset[str]]) -> list[str]:
    """``section.key: unknown key, ignored`` for each key ``known_keys[section]`` lacks ("" = top)."""
    warnings = []
    for section_name, known in known_keys.items():
        section = data.get(section_name) if section_name else data
        prefix = f"{section_name}." if section_name else ""
        if not isinstance(section, Mapping):
            continue
        for key in section:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            warnings.append(f"{prefix}{key}: unknown key, ignored{hint}")
    return warnings


def pool_reference_problems(data: Mapping[str, Any]) -> list[str]:
    """Checks between pools that need only the raw data, so they are reported with type errors."""
    pools = data.get("pools")
    if not isinstance(pools, list):
        return []
    entries = [(i, pool) for i, pool in enumerate(pools) if isinstance(pool, Mapping)]
    names = [pool.get("name") for _, pool in entries if isinstance(pool.get("name"), str)]
    dns_configs = data.get("dns_configs")
    dns_names = set(dns_configs) if isinstance(dns_configs, Mapping) else set()
    problems = []
    seen: set[str] = set()
    for i, pool in entries:
        name = pool.get("name")
        if isinstance(name, str) and name in seen:
            problems.append(f"pools[{i}].name: duplicate pool name {name!r}")
        seen.add(str(name))
        aliases = pool.get("alias")
        for alias in [aliases] if isinstance(aliases, str) else aliases if isinstance(aliases, list) else []:
            if alias != name and alias in names:
                problems.append(f"pools[{i}].alias: {alias!r} is the name of another pool")
        plugin = pool.get("dns_plugin")
        if isinstance(plugin, str) and plugin not in dns_names:
            problems.append(f"pools[{i}].dns_plugin: no dns_configs entry named {plugin!r}")
    return problems

"""The original's environment-variable overrides (lib/vmpooler.rb): which variable sets which key.

A variable that is set and non-empty wins over the files (the original treats an empty integer
variable as unset; we do so for every variable, which is what container environments that template
every variable need). Values stay strings here: the models coerce them, and ``origins`` lets an error
name the variable a bad value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CONFIG_VARS", "LDAP_VARS", "OPTIONAL_SECTION_VARS", "REDIS_VARS", "apply_env", "env_value"]

#: variable -> ``:config:`` key
CONFIG_VARS: Final = {
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

REDIS_VARS: Final = {
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
OPTIONAL_SECTION_VARS: Final = {
    "statsd": {"STATSD_SERVER": "server", "STATSD_PREFIX": "prefix", "STATSD_PORT": "port"},
    "graphite": {"GRAPHITE_SERVER": "server", "GRAPHITE_PREFIX": "prefix", "GRAPHITE_PORT": "port"},
    "tracing": {"VMPOOLER_TRACING_ENABLED": "enabled", "VMPOOLER_TRACING_JAEGER_HOST": "jaeger_host"},
    "auth": {"AUTH_PROVIDER": "provider"},
}

LDAP_VARS: Final = {
    "LDAP_HOST": "host",
    "LDAP_PORT": "port",
    "LDAP_BASE": "base",
    "LDAP_USER_OBJECT": "user_object",
}


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

    put(("config",), CONFIG_VARS, create=True)
    put(("redis",), REDIS_VARS, create=True)
    for section_name, table in OPTIONAL_SECTION_VARS.items():
        first = next(iter(table))
        put((section_name,), table, create=env_value(env, first) is not None)

    if isinstance(data.get("auth"), dict):
        put(("auth", "ldap"), LDAP_VARS, create=True)
    elif _any_set(env, LDAP_VARS):
        warnings.append("LDAP_* environment variables are set but there is no :auth: section; ignored")
    if env_value(env, "PURGE_UNCONFIGURED_FOLDERS") is not None:
        warnings.append("PURGE_UNCONFIGURED_FOLDERS: deprecated environment variable, use PURGE_UNCONFIGURED_RESOURCES")
    return origins, warnings


def _any_set(env: Mapping[str, str], table: Mapping[str, str]) -> bool:
    return any(env_value(env, var) is not None for var in table)

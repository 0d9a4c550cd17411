"""Keys the original reads that this implementation accepts but does not act on, each with the reason.

``notes`` turns the ones a configuration sets into ``<key path>: accepted, has no effect here: <why>``
lines, which ``validate-config`` and every start-up print, so no key the original honoured is
dropped without a word. A key that is honoured is not listed here; a key the original never read
earns the ``unknown key`` warning instead (``vmpooler.config.problems.unknown_key_warnings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["NO_EFFECT", "NO_EFFECT_ENV", "notes"]

_NO_DLQ = "there are no dead-letter queues; a failed VM stays in the pool's `failed` set with the reason"
_NO_PURGER = (
    "no stale-queue purger runs: each pool's pass times out pending VMs, replaces ready ones after ready_ttl "
    "and destroys VMs Redis does not know"
)
_NO_HEALTH = "no `vmpooler__health` hash is written; /healthcheck and /status report health"
_NO_ADAPTIVE = "provider calls have fixed time limits (each provider's own options), not adaptive ones"
_NO_POOL_MONITOR = "connection pools are not monitored"
_NO_HOSTNAME_CHECK = "a ready VM's hostname is not compared with its name"
_NO_NOTIFICATION = "nothing is logged ahead of `timeout`; the VM is failed when it passes"
_NO_RETRY = "a failed provider call is tried again by the pool's next pass, behind its circuit breaker"
_NO_PURGE = (
    "no provider deletes unconfigured folders or VMs at start-up; `vmpooler purge` destroys the VMs Redis does not know"
)

#: dotted key path ("*" = any pool or provider name) -> why it has no effect here
NO_EFFECT: Final[dict[str, str]] = {
    "config.timeout_notification": _NO_NOTIFICATION,
    "config.migration_limit": "VMs are never migrated between hosts at checkout",
    "config.max_tries": _NO_RETRY,
    "config.retry_factor": _NO_RETRY,
    "config.check_ready_vm_hostname_for_mismatch": _NO_HOSTNAME_CHECK,
    "config.dlq_enabled": _NO_DLQ,
    "config.dlq_ttl": _NO_DLQ,
    "config.dlq_max_entries": _NO_DLQ,
    "config.purge_enabled": _NO_PURGER,
    "config.purge_dry_run": _NO_PURGER,
    "config.purge_interval": _NO_PURGER,
    "config.max_pending_age": _NO_PURGER,
    "config.max_ready_age": _NO_PURGER,
    "config.max_completed_age": _NO_PURGER,
    "config.max_orphaned_age": _NO_PURGER,
    "config.health_check_enabled": _NO_HEALTH,
    "config.health_check_interval": _NO_HEALTH,
    "config.health_thresholds": _NO_HEALTH,
    "config.circuit_breaker_half_open_attempts": "one probe clone decides whether an open circuit breaker closes",
    "config.adaptive_timeout_enabled": _NO_ADAPTIVE,
    "config.connection_pool_timeout_min": _NO_ADAPTIVE,
    "config.connection_pool_timeout_max": _NO_ADAPTIVE,
    "config.connection_pool_timeout_initial": _NO_ADAPTIVE,
    "config.connection_pool_monitor_enabled": _NO_POOL_MONITOR,
    "config.connection_pool_monitor_interval": _NO_POOL_MONITOR,
    "pools.*.check_hostname_for_mismatch": _NO_HOSTNAME_CHECK,
    "pools.*.timeout_notification": _NO_NOTIFICATION,
    "redis.reconnect_attempts": "a dropped connection is retried once per call; a Redis outage fails calls "
    "after socket_timeout and the next pass tries again",
    "redis.connection_pool_timeout": "a call waits up to socket_timeout for a free connection",
    "providers.*.skip_dns_check_before_creating_vm": "new names are never looked up in DNS before a clone",
    "tracing": "no traces are exported (OpenTelemetry is not built in); request ids are in the log instead",
    "graphs": "the dashboard draws the history kept in Redis, not Graphite's render API",
}

#: environment variables the original reads that map onto no key here
NO_EFFECT_ENV: Final[dict[str, str]] = {
    "VMPOOLER_DEBUG": "`:auth: provider: dummy` runs without it here (with a warning at start-up)",
    "ABS_AWS_ACCESS_KEY": "the EC2 provider takes credentials from boto's chain (AWS_ACCESS_KEY_ID) "
    "or its `ABS_AWS_ACCESS_KEY` key",
    "ABS_AWS_SECRET_KEY": "the EC2 provider takes credentials from boto's chain (AWS_SECRET_ACCESS_KEY) "
    "or its `ABS_AWS_SECRET_KEY` key",
}

# dns_class values that manage records in the original (anything but dynamic-dns)
_DNS_NOTE: Final = "no DNS records are created or deleted: only the entry's `domain` is used"


def notes(data: Mapping[str, Any], origins: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """One line per key ``data`` sets that has no effect here (``data`` as assembled, before validation)."""
    lines = []
    for path, why in NO_EFFECT.items():
        for found in _paths(data, path.split(".")):
            via = f" (from environment variable {origins[found]})" if found in origins else ""
            lines.append(f"{found}: accepted, has no effect here: {why}{via}")
    dns = data.get("dns_configs")
    for name, entry in dns.items() if isinstance(dns, Mapping) else ():
        dns_class = entry.get("dns_class") if isinstance(entry, Mapping) else None
        if dns_class not in (None, "dynamic-dns"):
            lines.append(f"dns_configs.{name}.dns_class: accepted, has no effect here: {_DNS_NOTE}")
    prometheus = data.get("prometheus")
    if isinstance(prometheus, Mapping) and "prefix" in prometheus and prometheus.get("names") != "original":
        lines.append(
            "prometheus.prefix: accepted, has no effect here: it is the original's `vmpooler_instance` label, "
            "added with `names: original`"
        )
    config = data.get("config")
    if isinstance(config, Mapping) and config.get("create_linked_clones") is False:
        # the original's `create_linked_clones || true` turns a YAML false into true; only its env var says false
        lines.append(
            "config.create_linked_clones: false is honoured here (full clones); the original made linked clones "
            "anyway unless CREATE_LINKED_CLONES=false"
        )
    lines += [
        f"{var} (environment): accepted, has no effect here: {why}"
        for var, why in NO_EFFECT_ENV.items()
        if env.get(var)
    ]
    return lines


def _paths(data: Any, parts: list[str], prefix: str = "") -> list[str]:
    """The concrete key paths matching ``parts`` ("*" = every entry of a mapping or list) that ``data`` sets."""
    if not parts:
        return [prefix]
    head, rest = parts[0], parts[1:]
    if isinstance(data, list) and head == "*":
        return [p for i, item in enumerate(data) for p in _paths(item, rest, f"{prefix}[{i}]")]
    if not isinstance(data, Mapping):
        return []
    keys = list(data) if head == "*" else [head] if head in data and data[head] is not None else []
    return [p for key in keys for p in _paths(data[key], rest, f"{prefix}.{key}" if prefix else str(key))]

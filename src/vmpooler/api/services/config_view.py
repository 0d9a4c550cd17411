"""The configuration as ``/config`` and ``/full_config`` show it: an allow-list of fields the models know
to be harmless, never a redacted copy of everything.

Redacting by key name missed secrets under innocent names (a password inside ``endpoint_url``, a DNS
plugin's ``auth`` header, a pool's ``user_data``, a libvirt ``uri``); so only what is listed here is
served, every URL loses its ``user:password@``, and ``:auth:`` and ``:redis:`` are not served at all.
A provider's own keys (and a pool's keys for its provider) are not served: the core cannot know
which of them are secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from vmpooler.config import DnsConfig, PoolSettings, Settings
from vmpooler.providers.base import ProviderOptions

__all__ = ["full_config", "pool_entry", "without_userinfo"]

#: a pool's own fields: its name, sizes, timings and where it draws from
POOL_FIELDS: Final = frozenset(PoolSettings.model_fields) - {"provider_options"}
DNS_FIELDS: Final = frozenset(DnsConfig.model_fields)
#: the keys each metrics section is read with (vmpooler.metrics): a host, a port, a name prefix
METRICS_FIELDS: Final = {
    "statsd": frozenset({"server", "port", "prefix"}),
    "graphite": frozenset({"server", "port", "prefix"}),
    "prometheus": frozenset({"prometheus_prefix", "prometheus_endpoint"}),
}
RATE_LIMIT_CLASSES: Final = frozenset(
    {"global_per_ip", "authenticated", "vm_creation", "vm_deletion", "token_creation"}
)

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


def without_userinfo(value: Any) -> Any:
    """``value`` with ``user:password@`` cut out of every URL in every string it holds."""
    if isinstance(value, str):
        return _USERINFO.sub(r"\1", value)
    if isinstance(value, Mapping):
        return {str(k): without_userinfo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_userinfo(v) for v in value]
    return value


def _pick(section: Any, fields: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k in fields} if isinstance(section, Mapping) else {}


def _configured(section: BaseModel | None, fields: frozenset[str]) -> dict[str, Any]:
    """The ``fields`` the configuration set in ``section`` (defaults left out, as it was written)."""
    return section.model_dump(mode="json", include=set(fields & section.model_fields_set)) if section else {}


def public_provider_keys(settings: Settings, provider_name: str) -> dict[str, Any]:
    """The keys every provider shares (its class, pool limits, connection counts) of a provider's
    section; a provider's own keys (servers, users, passwords, URLs) are left out."""
    options = settings.provider_options(provider_name)
    return {key: value for key, value in options.items() if key in ProviderOptions.model_fields}


def pool_entry(pool: PoolSettings) -> dict[str, Any]:
    """A pool's harmless fields (its provider's keys left out), its alias as the configuration gave it."""
    entry = dict(without_userinfo(pool.model_dump(mode="json", include=set(POOL_FIELDS), exclude_none=True)))
    if pool.alias:
        entry["alias"] = pool.alias_as_configured
    return entry


def _rate_limits(section: Any) -> dict[str, Any]:
    if not isinstance(section, Mapping):
        return {}
    out: dict[str, Any] = {k: v for k, v in section.items() if k == "enabled" and isinstance(v, bool)}
    for name in RATE_LIMIT_CLASSES & set(section):
        out[name] = {k: v for k, v in _pick(section[name], frozenset({"limit", "period"})).items() if _number(v)}
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def full_config(settings: Settings) -> dict[str, Any]:
    """The whole configuration as ``/full_config`` serves it."""
    served: dict[str, Any] = {
        "config": settings.config.model_dump(mode="json"),
        "pools": [pool_entry(pool) for pool in settings.pools],
        "providers": {name: public_provider_keys(settings, name) for name in settings.providers},
        "tagfilter": dict(settings.tagfilter),
        "dns_configs": {name: dns.model_dump(include=set(DNS_FIELDS)) for name, dns in settings.dns_configs.items()},
        "rate_limits": _rate_limits(settings.rate_limits),
    }
    for section, fields in METRICS_FIELDS.items():
        served[section] = _configured(getattr(settings, section), fields)
    return dict(without_userinfo(served))

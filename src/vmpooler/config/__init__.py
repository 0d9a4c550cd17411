"""Loads vmpooler's YAML configuration once, at start-up, into typed settings; errors name the key path.

Where things are: ``load`` (start-up's entry point), ``settings`` (the models), ``globals``
(``:config:``), ``redis`` and ``tls``, ``rate_limits``, ``sources`` and ``env`` (files and environment
to one raw mapping), ``problems`` (every problem line, pydantic's errors included), ``effect`` (keys
accepted without effect), ``stored_pools`` (pools kept in Redis). Checks that need the providers are in
``vmpooler.validate``: this package never imports a provider, nor the API.

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
* Environment overrides (``vmpooler.config.env``) win over every file.
* A pool that names no provider uses the only configured provider when exactly one
  ``:providers:`` section (or the old ``:vsphere:``) exists, else ``dummy``.
* Per-pool ``timeout``, ``timeout_notification``, ``ready_ttl``, ``check_loop_delay_*`` and
  ``check_hostname_for_mismatch`` that a pool leaves out are inherited from ``:config:`` when a
  ``Settings`` is validated, so on a loaded ``Settings`` they always hold the effective value.
* Every other per-pool key (folder, datastore, memory, ...) is kept, unchecked, in
  ``provider_options``: the pool's provider owns its meaning.
* ``:redis:`` (one server, a Sentinel group, TLS, an ACL user) is described in ``vmpooler.config.redis``;
  ``:config: api_tls_cert_file``/``api_tls_key_file`` make the API serve HTTPS.
* Unknown keys at the top level, in ``:config:`` and in ``:redis:`` are warnings, never errors.
"""

from vmpooler.config.effect import NO_EFFECT, NO_EFFECT_ENV
from vmpooler.config.globals import VSPHERE_KEYS, GlobalSettings
from vmpooler.config.load import evaluate_source, load_settings, parse_settings
from vmpooler.config.problems import describe
from vmpooler.config.rate_limits import RateLimits, enabled_limits
from vmpooler.config.redis import RedisSettings, SentinelAddress
from vmpooler.config.settings import DnsConfig, PoolSettings, Settings
from vmpooler.config.stored_pools import pools_from_records, with_stored_pools
from vmpooler.config.tls import pair_problems

__all__ = [
    "NO_EFFECT",
    "NO_EFFECT_ENV",
    "VSPHERE_KEYS",
    "DnsConfig",
    "GlobalSettings",
    "PoolSettings",
    "RateLimits",
    "RedisSettings",
    "SentinelAddress",
    "Settings",
    "describe",
    "enabled_limits",
    "evaluate_source",
    "load_settings",
    "pair_problems",
    "parse_settings",
    "pools_from_records",
    "with_stored_pools",
]

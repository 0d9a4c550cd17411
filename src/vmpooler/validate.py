"""The checks a loaded configuration must pass before anything starts: one list, run by start-up and validate-config.

``vmpooler.config`` checks each section's shape (the metrics sections included); ``problems`` adds
what needs the installed code: each provider's options and its pools' keys (through the provider
registry, passed in), the ``:auth:`` section and ``:rate_limits:``. This is the one place configuration
meets the providers (``vmpooler.config`` never imports one); ``template_problem`` checks a template set
at run time. ``vmpooler validate-config`` and every ``vmpooler serve|api|manager`` call the same
function, so a file validate-config passes never fails at start-up, and the messages are the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmpooler.auth import build_backend
from vmpooler.auth.oidc_config import read_oidc
from vmpooler.auth.policy import read_policy
from vmpooler.config import VSPHERE_KEYS, Settings, describe, enabled_limits, evaluate_source
from vmpooler.config.webhooks import webhook_problems
from vmpooler.errors import ConfigError
from vmpooler.providers import registry
from vmpooler.providers.base import Provider

__all__ = ["LoadProvider", "folder_problems", "notes", "problems", "template_problem", "validate_file"]

#: finds a provider class by its ``provider_class`` name (``registry.load``; tests may pass their own)
LoadProvider = Callable[[str], type[Provider]]


def problems(settings: Settings, load_provider: LoadProvider = registry.load) -> list[str]:
    """Every problem start-up would meet with ``settings``, each naming its key path; empty when it can start."""
    return [
        *provider_problems(settings, load_provider),
        *_raised(lambda: build_backend(settings.auth)),
        *_raised(lambda: read_policy(settings.auth)),
        *_raised(lambda: read_oidc(settings.auth)),
        *_raised(lambda: enabled_limits(settings)),
        *webhook_problems(settings.webhooks),
        *suspend_problems(settings, load_provider),
    ]


def suspend_problems(settings: Settings, load_provider: LoadProvider) -> list[str]:
    """Pools asking for a suspended tier from a provider that cannot suspend and resume VMs."""
    classes = _provider_classes(settings, load_provider)
    return [
        f"pools[{i}].suspended: pool {pool.name!r} keeps {pool.suspended} VMs suspended, but its provider "
        f"{pool.provider!r} ({classes[pool.provider].__name__}) cannot suspend VMs: set it to 0 or use one "
        "that can (dummy, qemu)"
        for i, pool in enumerate(settings.pools)
        if pool.suspended and pool.provider in classes and not classes[pool.provider].suspends()
    ]


def notes(settings: Settings, load_provider: LoadProvider = registry.load) -> list[str]:
    """``accepted, has no effect here`` lines that need the provider classes (``vmpooler.config.effect`` has the
    rest): ``:config:`` keys only a provider no pool uses reads, and purging asked of a provider that never purges."""
    classes = _provider_classes(settings, load_provider)
    read_by = {key for cls in classes.values() for key in cls.global_keys}
    found = [
        f"config.{key}: accepted, has no effect here: only the vSphere provider reads it, and no pool uses one"
        for key in sorted(VSPHERE_KEYS)
        if key in settings.config.model_fields_set and key not in read_by and key != "purge_unconfigured_resources"
    ]
    for name, cls in classes.items():
        asked = settings.provider_options(name).get("purge_unconfigured_resources")
        if "purge_unconfigured_resources" in cls.global_keys:
            asked = _options(settings, name, cls).get("purge_unconfigured_resources")
        elif asked is None:
            asked = settings.config.purge_unconfigured_resources
        if asked and not cls.purges:
            found.append(
                f"providers.{name}.purge_unconfigured_resources: accepted, has no effect here: provider class "
                f"{cls.__name__} deletes nothing unconfigured (`vmpooler purge` destroys VMs Redis does not know)"
            )
    return found


def _provider_classes(settings: Settings, load_provider: LoadProvider) -> dict[str, type[Provider]]:
    """The class of each provider a pool uses, for those that load (problems() reports the others)."""
    classes = {}
    for name in {pool.provider for pool in settings.pools}:
        try:
            classes[name] = load_provider(registry.class_name(name, settings.providers))
        except (ConfigError, ImportError, AttributeError):
            continue
    return classes


def validate_file(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    load_provider: LoadProvider = registry.load,
    state_dir: Path = Path(".vmpooler"),
) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` for a file, offline: what start-up would refuse, and what it would warn about.
    ``state_dir`` is the one the service will get: relative provider paths are checked under it."""
    settings, found, warnings = evaluate_source(path, os.environ if env is None else env)
    if settings is not None:
        found += problems(settings, load_provider)
        found += folder_problems(settings, state_dir)
        warnings += notes(settings, load_provider)
        if not settings.pools_configured:
            warnings.append("pools: none configured; the pools published in Redis (vmpooler__pools) are served")
    return found, warnings


def folder_problems(settings: Settings, state_dir: Path) -> list[str]:
    """The folders start-up would make and cannot: the providers' files (``registry.build_all`` refuses
    the same) and the embedded Redis's data folder."""
    found = registry.path_problems(settings.pools, settings.providers, settings.config, state_dir)
    if settings.redis.embedded and (blocker := registry.unmakeable(state_dir.absolute())) is not None:
        found.append(f"--state-dir: cannot create {state_dir} for the embedded Redis ({blocker} is in the way)")
    return found


def provider_problems(settings: Settings, load_provider: LoadProvider) -> list[str]:
    """Missing provider classes, invalid ``:providers:`` options, and pools' keys their provider rejects."""
    found: list[str] = []
    where_named = {name: f"providers.{name}" for name in settings.providers}
    for i, pool in enumerate(settings.pools):
        where_named.setdefault(pool.provider, f"pools[{i}].provider")
    classes: dict[str, type[Provider]] = {}
    for name, where in where_named.items():
        provider_class = registry.class_name(name, settings.providers)
        try:
            cls = load_provider(provider_class)
        except ConfigError as exc:
            found += [f"{where}: {problem.removeprefix('providers: ')}" for problem in exc.problems]
            continue
        except (ImportError, AttributeError) as exc:
            found.append(f"{where}: provider class {provider_class!r} failed to load: {exc}")
            continue
        classes[name] = cls
        try:
            cls.options_model.model_validate(_options(settings, name, cls))
        except ValidationError as exc:
            found += describe(exc, ("providers", name))
    for i, pool in enumerate(settings.pools):
        model = classes[pool.provider].pool_options_model if pool.provider in classes else None
        if model is None:
            continue
        try:
            model.model_validate(pool.provider_options)
        except ValidationError as exc:
            found += describe(exc, ("pools", i))
    return found


def template_problem(
    settings: Settings, pool_name: str, template: str, load_provider: LoadProvider = registry.load
) -> str | None:
    """Why ``template`` cannot be ``pool_name``'s template (its provider's rule), or None when it can."""
    pool = settings.pool(pool_name)
    if pool is None:
        return f"unknown pool {pool_name!r}"
    try:
        cls = load_provider(registry.class_name(pool.provider, settings.providers))
        validated = cls.options_model.model_validate(settings.provider_options(pool.provider))
    except (ConfigError, ValidationError, ImportError, AttributeError):
        return f"its provider {pool.provider!r} is not usable here, so no template can be checked"
    return cls.template_problem(validated, pool.target(), template)


def _options(settings: Settings, name: str, cls: type[Provider]) -> dict[str, Any]:
    return registry.options_for(settings.providers.get(name), settings.config, cls)


def _raised(check: Callable[[], object]) -> list[str]:
    try:
        check()
    except ConfigError as exc:
        return list(exc.problems)
    return []

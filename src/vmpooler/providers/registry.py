"""Finds provider classes through the ``vmpooler.providers`` entry point group."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vmpooler.config import describe
from vmpooler.errors import ConfigError
from vmpooler.providers.base import Provider, ProviderOptions

if TYPE_CHECKING:
    from vmpooler.config import GlobalSettings, PoolSettings

#: the ``:providers:`` sections, by the name pools use
Sections = Mapping[str, Mapping[str, Any]]

ENTRY_POINT_GROUP = "vmpooler.providers"


def available() -> dict[str, str]:
    """Provider class name -> the module path it loads from."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(provider_class: str) -> type[Provider]:
    """The Provider subclass registered as ``provider_class``; ConfigError names the choices."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == provider_class:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Provider)):
                raise ConfigError([f"providers: entry point {ep.value!r} is not a Provider subclass"])
            return cls
    known = ", ".join(sorted(available())) or "none"
    raise ConfigError([f"providers: no provider class {provider_class!r} is installed (known: {known})"])


def build(name: str, options: dict[str, Any], state_dir: Path | None = None) -> Provider:
    """Instantiate the provider configured as ``:providers: <name>:`` with its validated options; relative
    paths among them are taken relative to ``state_dir`` (else to the working directory)."""
    cls, validated = _validated(name, options, state_dir)
    return cls(name, validated)


def _validated(name: str, options: dict[str, Any], state_dir: Path | None) -> tuple[type[Provider], ProviderOptions]:
    cls = load(str(options.get("provider_class") or name))
    try:
        validated = cls.options_model.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(describe(exc, ("providers", name), wording="terse")) from exc
    return cls, validated.under(state_dir) if state_dir is not None else validated


def options_for(section: Mapping[str, Any] | None, config: GlobalSettings, cls: type[Provider]) -> dict[str, Any]:
    """A provider's ``:providers: <name>:`` section, with the ``:config:`` keys ``cls`` reads as defaults.

    A key the section sets wins; the ``:config:`` value (its default included, so the original's
    defaults hold) fills in a key the section leaves out.
    """
    options = dict(section or {})
    for key in cls.global_keys:
        options.setdefault(key, getattr(config, key))
    return options


def build_all(
    pools: Sequence[PoolSettings], sections: Sections, config: GlobalSettings, state_dir: Path | None = None
) -> dict[str, Provider]:
    """One provider instance per provider name that one of ``pools`` uses, from its section of ``sections``;
    relative paths among their options are taken under ``state_dir`` (else the working directory), and
    refused when their folder cannot be made."""
    problems = path_problems(pools, sections, config, state_dir or Path.cwd())
    if problems:
        raise ConfigError(problems)
    built = {}
    for name in _names_in_use(pools):
        cls = load(class_name(name, sections))
        built[name] = build(name, options_for(sections.get(name), config, cls), state_dir)
    return built


def path_problems(
    pools: Sequence[PoolSettings], sections: Sections, config: GlobalSettings, state_dir: Path
) -> list[str]:
    """The files and folders the providers of ``pools`` name (relative ones under ``state_dir``) whose folder
    cannot be made: the nearest existing one must be a folder this process may write to."""
    problems = []
    for name in _names_in_use(pools):
        try:
            cls = load(class_name(name, sections))
            _, validated = _validated(name, options_for(sections.get(name), config, cls), state_dir)
        except (ConfigError, ImportError, AttributeError):
            continue  # reported by the options check
        for option, path in validated.paths().items():
            blocker = unmakeable(path.absolute().parent)
            if blocker is not None:
                problems.append(f"providers.{name}.{option}: cannot create {path} ({blocker} is not a writable folder)")
    return problems


def class_name(name: str, sections: Sections) -> str:
    """The ``provider_class`` the provider configured as ``name`` is an instance of (default: ``name``)."""
    return str((sections.get(name) or {}).get("provider_class") or name)


def _names_in_use(pools: Sequence[PoolSettings]) -> list[str]:
    return sorted({pool.provider for pool in pools})


def unmakeable(folder: Path) -> Path | None:
    """None when ``folder`` exists or this process could make it; else the existing path in the way."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return None if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK) else existing

"""Finds provider classes through the ``vmpooler.providers`` entry point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vmpooler.errors import ConfigError
from vmpooler.providers.base import Provider

if TYPE_CHECKING:
    from vmpooler.config import Settings

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


def build(name: str, options: dict[str, Any]) -> Provider:
    """Instantiate the provider configured as ``:providers: <name>:`` with its validated options."""
    cls = load(str(options.get("provider_class") or name))
    try:
        validated = cls.options_model.model_validate(options)
    except ValidationError as exc:
        problems = [f"providers.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(problems) from exc
    return cls(name, validated)


def options_for(settings: Settings, name: str, cls: type[Provider]) -> dict[str, Any]:
    """The ``:providers: <name>:`` section, with the ``:config:`` keys ``cls`` reads as defaults.

    A key the section sets wins; the ``:config:`` value (its default included, so the original's
    defaults hold) fills in a key the section leaves out.
    """
    options = settings.provider_options(name)
    for key in cls.global_keys:
        options.setdefault(key, getattr(settings.config, key))
    return options


def build_all(settings: Settings) -> dict[str, Provider]:
    """One provider instance per provider name that a pool uses."""
    names = sorted({pool.provider for pool in settings.pools})
    built = {}
    for name in names:
        options = settings.provider_options(name)
        cls = load(str(options.get("provider_class") or name))
        built[name] = build(name, options_for(settings, name, cls))
    return built

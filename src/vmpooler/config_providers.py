"""What the API may learn of a pool's provider from the configuration alone, without running one:
which of its option keys are harmless to show, and whether a template set at run time is one it accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vmpooler.errors import ConfigError
from vmpooler.providers import registry
from vmpooler.providers.base import ProviderOptions

if TYPE_CHECKING:
    from vmpooler.config import Settings

__all__ = ["public_provider_keys", "template_problem"]


def public_provider_keys(settings: Settings, provider_name: str) -> dict[str, Any]:
    """The keys every provider shares (its class, pool limits, connection counts) of a provider's
    section; a provider's own keys (servers, users, passwords, URLs) are left out."""
    options = settings.provider_options(provider_name)
    return {key: value for key, value in options.items() if key in ProviderOptions.model_fields}


def template_problem(settings: Settings, pool_name: str, template: str) -> str | None:
    """Why ``template`` cannot be ``pool_name``'s template (its provider's rule), or None when it can."""
    pool = settings.pool(pool_name)
    if pool is None:
        return f"unknown pool {pool_name!r}"
    options = settings.provider_options(pool.provider)
    try:
        cls = registry.load(str(options.get("provider_class") or pool.provider))
        validated = cls.options_model.model_validate(options)
    except (ConfigError, ValidationError, ImportError, AttributeError):
        return f"its provider {pool.provider!r} is not usable here, so no template can be checked"
    return cls.template_problem(validated, pool.target(), template)

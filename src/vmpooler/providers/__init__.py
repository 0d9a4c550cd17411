"""VM providers: the interface, the entry-point registry, and the in-tree dummy provider."""

from vmpooler.providers.base import Provider, ProviderOptions

__all__ = ["Provider", "ProviderOptions"]

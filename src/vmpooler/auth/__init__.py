"""Who may take a token: the authentication backends behind the API's HTTP basic auth.

``base.AuthBackend`` is the interface (check a user name and password, or raise ``AuthUnavailable``);
``dummy.DummyAuth`` is the original's development backend and ``ldap.LdapAuth`` the real one.
``build_backend`` turns the configuration's ``:auth:`` section into one of them, once, at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from vmpooler.auth.base import AuthBackend
from vmpooler.auth.dummy import DummyAuth
from vmpooler.auth.ldap import LdapAuth, LdapSettings
from vmpooler.config import describe
from vmpooler.errors import ConfigError

__all__ = ["AuthBackend", "DummyAuth", "LdapAuth", "LdapSettings", "build_backend"]

_PROVIDERS = ("dummy", "ldap")


def build_backend(auth: Mapping[str, Any] | None) -> AuthBackend | None:
    """The backend the ``:auth:`` section names; None when there is no such section, or when it has
    only ``oidc:`` (ID tokens are then the only credentials).

    Raises ConfigError naming the key path (``auth.provider``, ``auth.ldap.host``, ...) when the
    section is wrong.
    """
    if auth is None:
        return None
    if not isinstance(auth, Mapping):
        raise ConfigError(["auth: must be a mapping"])
    provider = auth.get("provider")
    if isinstance(provider, str):
        provider = provider.strip().lstrip(":")
    if provider is None:
        if auth.get("oidc"):
            return None  # OIDC ID tokens only: no passwords, so no token is made with basic auth
        raise ConfigError(
            [f"auth.provider: required (one of {', '.join(_PROVIDERS)}) unless auth.oidc names an issuer"]
        )
    if provider == "dummy":
        return DummyAuth()
    if provider == "ldap":
        return LdapAuth(_ldap_settings(auth.get("ldap")))
    raise ConfigError([f"auth.provider: must be one of {', '.join(_PROVIDERS)}, got {provider!r}"])


def _ldap_settings(section: Any) -> LdapSettings:
    if section is None:
        raise ConfigError(["auth.ldap: required when auth.provider is ldap"])
    try:
        return LdapSettings.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(describe(exc, ("auth", "ldap"))) from exc

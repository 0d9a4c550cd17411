"""Where the client commands find the service: options, environment, then ``~/.vmpooler.yaml``.

The file (path overridable with ``$VMPOOLER_CLIENT_CONFIG``) is vmfloaty's idea, in YAML::

    url: https://vmpooler.example.com
    user: alice
    token: 0123abcd...
    services:                  # chosen with --service NAME; each key overrides the top level
      staging:
        url: http://staging:4567
        token: ...

A value given as an option (or its environment variable) wins over the chosen service, which wins over
the top level, which wins over the built-in default URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vmpooler.client.core import DEFAULT_URL
from vmpooler.errors import ConfigError

CONFIG_ENV = "VMPOOLER_CLIENT_CONFIG"
KEYS = ("url", "user", "token")


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    user: str | None


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or Path.home() / ".vmpooler.yaml")


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: {exc}".replace("\n", " ")]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: must be a mapping of url, user, token and services"])
    return raw


def _section(raw: dict[str, Any], where: str) -> dict[str, str]:
    problems = [f"{where}{key}: must be a string" for key in KEYS if key in raw and not isinstance(raw[key], str)]
    if problems:
        raise ConfigError(problems)
    return {key: raw[key] for key in KEYS if raw.get(key)}


def resolve(url: str | None, token: str | None, user: str | None, service: str | None) -> Connection:
    """The connection to use: the options given, filled in from the config file."""
    path = config_path()
    raw = _read(path)
    values = _section(raw, "")
    if service is not None:
        services = raw.get("services") or {}
        if not isinstance(services, dict) or not isinstance(services.get(service), dict):
            known = ", ".join(sorted(services)) if isinstance(services, dict) and services else "none"
            raise ConfigError([f"services.{service}: no such service in {path} (known: {known})"])
        values |= _section(services[service], f"services.{service}.")
    return Connection(
        url=url or values.get("url") or DEFAULT_URL,
        token=token or values.get("token"),
        user=user or values.get("user"),
    )


__all__ = ["CONFIG_ENV", "Connection", "config_path", "resolve"]

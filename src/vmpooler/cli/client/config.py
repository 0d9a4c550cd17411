"""Where the client commands find the service: options, environment, then ``~/.vmpooler.yaml`` (or, when
there is none, vmfloaty's ``~/.vmfloaty.yml``).

The file (path overridable with ``$VMPOOLER_CLIENT_CONFIG``) is vmfloaty's idea, in YAML::

    url: https://vmpooler.example.com      # with or without vmfloaty's /api/v1 or /api/v3
    user: alice
    token: 0123abcd...
    ssh_user: root                         # `vmpooler ssh`: whom to log in as, and with which key
    ssh_key: ~/.ssh/id_ed25519
    services:                  # chosen with --service NAME; each key overrides the top level
      staging:
        url: http://staging:4567
        token: ...

A value given as an option (or its environment variable) wins over the chosen service, which wins over
the top level, which wins over the built-in default URL. From a vmfloaty file, as vmfloaty does, the
first service is the one used when ``--service`` is not given; a service of another ``type`` (ABS,
nspooler) is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmpooler.errors import ConfigError

CONFIG_ENV = "VMPOOLER_CLIENT_CONFIG"
KEYS = ("url", "user", "token", "ssh_user", "ssh_key")
#: the original's default address; the same as :data:`vmpooler.client.core.DEFAULT_URL` (not imported:
#: that loads httpx, which `--help` need not)
DEFAULT_URL = "http://127.0.0.1:4567"


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None
    user: str | None
    ssh_user: str | None = None
    ssh_key: str | None = None


def config_path() -> Path:
    """Our own file: ``$VMPOOLER_CLIENT_CONFIG``, else ``~/.vmpooler.yaml``."""
    return Path(os.environ.get(CONFIG_ENV) or Path.home() / ".vmpooler.yaml")


def vmfloaty_path() -> Path:
    return Path.home() / ".vmfloaty.yml"


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import yaml  # only when there is a file: a start without one need not pay for it

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


def _source() -> tuple[Path, dict[str, Any], bool]:
    """The file to read, its contents, and whether it is vmfloaty's."""
    ours = config_path()
    if os.environ.get(CONFIG_ENV) or ours.exists():
        return ours, _read(ours), False
    floaty = vmfloaty_path()
    return floaty, _read(floaty), floaty.exists()


def _service(raw: dict[str, Any], service: str | None, path: Path, vmfloaty: bool) -> tuple[str, dict[str, Any]] | None:
    services = raw.get("services") or {}
    if not isinstance(services, dict):
        raise ConfigError([f"{path}: services: must be a mapping of service names to url, user and token"])
    if service is None:
        if not (vmfloaty and services):
            return None
        service = next(iter(services))  # vmfloaty's default: the first service
    entry = services.get(service)
    if not isinstance(entry, dict):
        known = ", ".join(sorted(services)) or "none"
        raise ConfigError([f"services.{service}: no such service in {path} (known: {known})"])
    kind = str(entry.get("type", raw.get("type", "vmpooler"))).lower()
    if kind != "vmpooler":
        raise ConfigError([f"services.{service}.type: {kind!r} is not a vmpooler; this client speaks only to vmpooler"])
    return service, entry


def resolve(url: str | None, token: str | None, user: str | None, service: str | None) -> Connection:
    """The connection to use: the options given, filled in from the config file."""
    path, raw, vmfloaty = _source()
    values = _section(raw, "")
    chosen = _service(raw, service, path, vmfloaty)
    if chosen is not None:
        name, entry = chosen
        values |= _section(entry, f"services.{name}.")
    return Connection(
        url=url or values.get("url") or DEFAULT_URL,
        token=token or values.get("token"),
        user=user or values.get("user"),
        ssh_user=values.get("ssh_user"),
        ssh_key=values.get("ssh_key"),
    )


__all__ = ["CONFIG_ENV", "DEFAULT_URL", "Connection", "config_path", "resolve", "vmfloaty_path"]

"""Reads, assembles and validates the configuration: ``load_settings`` is what start-up calls."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from vmpooler.config import effect
from vmpooler.config.globals import UPSTREAM_ONLY_KEYS, GlobalSettings
from vmpooler.config.problems import describe, pool_reference_problems, settings_problems, unknown_key_warnings
from vmpooler.config.redis import RedisSettings
from vmpooler.config.settings import Settings
from vmpooler.config.sources import assemble, read_source
from vmpooler.errors import ConfigError

__all__ = ["evaluate_source", "load_settings", "parse_settings"]

# where an unknown key earns a warning: section ("" = top level) -> the keys it knows
_KNOWN_KEYS: Final = {
    "": frozenset(Settings.model_fields) | {"vsphere"},
    "config": frozenset(GlobalSettings.model_fields) | {"purge_unconfigured_folders"} | UPSTREAM_ONLY_KEYS,
    "redis": frozenset(RedisSettings.model_fields),
}


def parse_settings(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, *, base_dir: Path | None = None
) -> tuple[Settings, list[str]]:
    """Validate an already-parsed YAML document; returns ``(settings, warnings)``.

    ``env`` defaults to ``os.environ``; ``base_dir`` (default: the working directory) resolves
    relative ``extra_config`` paths. Raises ConfigError listing every problem found.
    """
    settings, problems, warnings = _evaluate(raw, os.environ if env is None else env, base_dir or Path.cwd())
    if settings is None or problems:
        raise ConfigError(problems)
    return settings, warnings


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """Find, read and validate the configuration (see the module notes for the source order)."""
    env = os.environ if env is None else env
    raw, base_dir = read_source(path, env)
    return parse_settings(raw, env, base_dir=base_dir)


def evaluate_source(path: str | Path | None, env: Mapping[str, str]) -> tuple[Settings | None, list[str], list[str]]:
    """Read and validate without raising: ``(settings or None, problems, warnings)``."""
    try:
        raw, base_dir = read_source(path, env)
    except ConfigError as exc:
        return None, exc.problems, []
    return _evaluate(raw, env, base_dir)


# --- evaluation -------------------------------------------------------------------------------------


def _evaluate(raw: Any, env: Mapping[str, str], base_dir: Path) -> tuple[Settings | None, list[str], list[str]]:
    """Everything ``parse_settings`` does, returning problems instead of raising."""
    problems: list[str] = []
    warnings: list[str] = []
    data, origins = assemble(raw, env, base_dir, problems, warnings)
    if data is None:
        return None, problems, warnings
    warnings += unknown_key_warnings(data, _KNOWN_KEYS)
    warnings += effect.notes(data, origins, env)
    problems += pool_reference_problems(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        return None, problems + describe(exc, origins=origins), warnings
    problems += settings_problems(settings)
    return settings, problems, warnings

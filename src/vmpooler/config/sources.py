"""Turns YAML files and the environment into the raw mapping the settings models validate.

Covers where the configuration comes from, Ruby-symbol keys, extra files, the environment's
overrides (``vmpooler.config.env``) and old layouts. Problems are collected, never raised one by one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from vmpooler.config.env import apply_env, env_value
from vmpooler.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_FILE", "assemble", "read_source", "read_yaml_file"]

DEFAULT_CONFIG_FILE: Final = "vmpooler.yaml"


def read_source(path: str | Path | None, env: Mapping[str, str]) -> tuple[Any, Path]:
    """The parsed YAML document and the directory relative extra files resolve against."""
    if path is not None:
        return read_yaml_file(Path(path), "config file"), Path(path).resolve().parent
    text = env_value(env, "VMPOOLER_CONFIG")
    if text is not None:
        return _parse_yaml(text, "VMPOOLER_CONFIG"), Path.cwd()
    file_name = env_value(env, "VMPOOLER_CONFIG_FILE")
    if file_name is not None:
        return read_yaml_file(Path(file_name), "VMPOOLER_CONFIG_FILE"), Path(file_name).resolve().parent
    if Path(DEFAULT_CONFIG_FILE).is_file():
        return read_yaml_file(Path(DEFAULT_CONFIG_FILE), "config file"), Path.cwd()
    return {}, Path.cwd()


def read_yaml_file(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{what}: file not found: {path}"]) from None
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
        raise ConfigError([f"{what}: {path} is not UTF-8 text ({byte}); save it as UTF-8"]) from exc
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, label: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{label}: YAML syntax error{where}: {exc.problem or exc.context}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{label}: invalid YAML: {exc}"]) from exc


def assemble(
    raw: Any, env: Mapping[str, str], base_dir: Path, problems: list[str], warnings: list[str]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The mapping to validate (None when the top level is not a mapping) and the env ``origins``."""
    data = _normalised(raw, "top level", problems)
    if data is None:
        return None, {}
    extra = env_value(env, "EXTRA_CONFIG")
    if extra is None and isinstance(data.get("config"), Mapping):
        extra = data["config"].get("extra_config")
    if isinstance(extra, str) and extra.strip():
        _merge_extra_files(data, extra, base_dir, problems)
    origins, env_warnings = apply_env(data, env)
    warnings += env_warnings
    _apply_legacy_layout(data, warnings)
    return data, origins


def _normalised(raw: Any, label: str, problems: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(
            f"{label}: must be a mapping of sections, got {'a list' if isinstance(raw, list) else repr(raw)}"
        )
        return None
    return _unsymbol(raw, "", problems)


def _unsymbol(mapping: Mapping[Any, Any], path: str, problems: list[str]) -> dict[str, Any]:
    """A deep copy with Ruby-symbol keys (``:config``) read as plain ones; lists are copied as is."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = key
        if isinstance(key, str) and key.startswith(":"):
            # `:config:` in YAML is the key ":config"; quoted (':config:') it keeps both colons
            name = key[1:-1] if key.endswith(":") and len(key) > 2 else key[1:]
        full = f"{path}.{name}" if path else str(name)
        if name in out:
            problems.append(f"{full}: given twice (as :{name}: and {name}:); keep one")
        out[name] = _unsymbol(value, full, problems) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out


def _merge_extra_files(data: dict[str, Any], extra: str, base_dir: Path, problems: list[str]) -> None:
    for name in filter(None, (part.strip() for part in extra.split(","))):
        path = base_dir / Path(name).expanduser()
        try:
            raw = read_yaml_file(path, "config.extra_config")
        except ConfigError as exc:
            problems += exc.problems
            continue
        overlay = _normalised(raw, f"extra config {path}", problems)
        if overlay is not None:
            _deep_merge(data, overlay)


def _deep_merge(base: dict[str, Any], overlay: Mapping[str, Any], *, top: bool = True) -> None:
    for key, value in overlay.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _deep_merge(current, value, top=False)
        elif top and key == "pools" and isinstance(current, list) and isinstance(value, list):
            base[key] = _merge_pools(current, value)
        else:
            base[key] = value


def _merge_pools(pools: list[Any], overlay: list[Any]) -> list[Any]:
    # an extra file usually adds pools or adjusts one; matching by name lets it do both
    merged = list(pools)
    index = {p["name"]: i for i, p in enumerate(merged) if isinstance(p, dict) and isinstance(p.get("name"), str)}
    for pool in overlay:
        name = pool.get("name") if isinstance(pool, dict) else None
        found = index.get(name) if isinstance(name, str) else None
        if found is None:
            merged.append(pool)
        else:
            merged[found] = {**merged[found], **pool}
    return merged


def _apply_legacy_layout(data: dict[str, Any], warnings: list[str]) -> None:
    for key in [key for key, value in data.items() if value is None]:
        del data[key]  # an empty section (`:tagfilter:` and nothing under it) means "not configured"
    providers = data.setdefault("providers", {})
    if isinstance(providers, dict):
        if isinstance(data.get("vsphere"), Mapping) and "vsphere" not in providers:
            providers["vsphere"] = data["vsphere"]
            warnings.append("vsphere: old top-level provider section, read as providers.vsphere")
        for name, options in providers.items():
            if options is None:
                providers[name] = {}
        default = next(iter(providers)) if len(providers) == 1 else "dummy"
        for pool in data.get("pools") or []:
            if isinstance(pool, dict) and pool.get("provider") is None:
                pool["provider"] = default
    config = data.get("config")
    if isinstance(config, Mapping):
        if config.get("domain") is not None:
            warnings.append("config.domain: deprecated (removed in vmpooler v3); use a :dns_configs: entry")
        if "purge_unconfigured_folders" in config:
            warnings.append("config.purge_unconfigured_folders: deprecated, use purge_unconfigured_resources")
    auth = data.get("auth")
    if isinstance(auth, Mapping) and auth.get("provider") == "dummy":
        warnings.append("auth.provider: 'dummy' accepts any user whose password differs from the name")

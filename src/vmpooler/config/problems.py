"""One line per configuration problem, naming the key path: pydantic's errors (``describe``) and the checks
no model can make alone (keys that only make sense together, references between pools, unknown keys)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from pydantic import BaseModel

from vmpooler.config.tls import pair_problems

if TYPE_CHECKING:
    from vmpooler.config.settings import Settings

__all__ = ["Invalid", "Wording", "describe", "pool_reference_problems", "settings_problems", "unknown_key_warnings"]

#: How ``describe`` words a problem:
#: ``ours``: our words for the usual mistakes (``pools[0].size: must be an integer, got 'x'``), as every
#: configuration section reports them; ``pydantic``: pydantic's sentence with what was given
#: (``rate_limits.vm_creation.limit: input should be ...``); ``terse``: pydantic's sentence alone, the path
#: dotted (``body.0.name: Field required``), as the API's 400s and the providers' errors have always read.
Wording = Literal["ours", "pydantic", "terse"]


class Invalid(Protocol):
    """What failed validation: pydantic's ``ValidationError``, or FastAPI's ``RequestValidationError``."""

    def errors(self) -> Sequence[Any]: ...


_MESSAGES: Final = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_too_short": "must not be empty",
}
_BOUNDS: Final = {  # pydantic error type -> (symbol, its ctx key)
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def describe(
    exc: Invalid,
    prefix: tuple[str | int, ...] = (),
    *,
    origins: Mapping[str, str] | None = None,
    wording: Wording = "ours",
    model: type[BaseModel] | None = None,
) -> list[str]:
    """One ``<key path>: <what is wrong>`` line per error of ``exc``, the path starting with ``prefix``.

    ``origins`` (dotted key path -> environment variable) names the variable a bad value came from;
    ``model`` (the model that raised) lets an unknown key's line list the keys it knows."""
    lines = []
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        if wording == "terse":
            lines.append(f"{'.'.join(str(part) for part in loc)}: {error['msg']}")
            continue
        path = _path(loc)
        message = _our_message(error) if wording == "ours" else _pydantic_message(error, model)
        origin = (origins or {}).get(path)
        lines.append(f"{path}: {message}" + (f" (from environment variable {origin})" if origin else ""))
    return lines


def _our_message(error: Mapping[str, Any]) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error.get("input"))
    if kind == "missing":
        return "required"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"must be {symbol} {_show(ctx[key])}, got {got}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}, got {got}"
    if kind == "string_too_short":
        return _MESSAGES[kind]
    if kind == "value_error":  # a model's own check: its message says what is wrong, and with what
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{_MESSAGES.get(kind, error['msg'])}, got {got}"


def _pydantic_message(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        known = _known_keys(model, error["loc"][:-1])
        return f"unknown key; known keys are {', '.join(known)}" if known else "unknown key"
    return f"{message[0].lower()}{message[1:]}, got {error.get('input')!r}"


def _known_keys(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> list[str]:
    """The fields of the model found at ``loc`` under ``model`` (none when it is not a model)."""
    for part in loc:
        field = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model is not None else []


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a bound of gt=0 on a float field reads "> 0", not "> 0.0"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- checks of the raw data, reported with the type errors ------------------------------------------


def unknown_key_warnings(data: Mapping[str, Any], known_keys: Mapping[str, frozenset[str]]) -> list[str]:
    """``section.key: unknown key, ignored`` for each key ``known_keys[section]`` lacks ("" = top)."""
    warnings = []
    for section_name, known in known_keys.items():
        section = data.get(section_name) if section_name else data
        prefix = f"{section_name}." if section_name else ""
        if not isinstance(section, Mapping):
            continue
        for key in section:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            warnings.append(f"{prefix}{key}: unknown key, ignored{hint}")
    return warnings


def pool_reference_problems(data: Mapping[str, Any]) -> list[str]:
    """Checks between pools that need only the raw data, so they are reported with type errors."""
    pools = data.get("pools")
    if not isinstance(pools, list):
        return []
    entries = [(i, pool) for i, pool in enumerate(pools) if isinstance(pool, Mapping)]
    names = [pool.get("name") for _, pool in entries if isinstance(pool.get("name"), str)]
    dns_configs = data.get("dns_configs")
    dns_names = set(dns_configs) if isinstance(dns_configs, Mapping) else set()
    problems = []
    seen: set[str] = set()
    for i, pool in entries:
        name = pool.get("name")
        if isinstance(name, str) and name in seen:
            problems.append(f"pools[{i}].name: duplicate pool name {name!r}")
        seen.add(str(name))
        aliases = pool.get("alias")
        for alias in [aliases] if isinstance(aliases, str) else aliases if isinstance(aliases, list) else []:
            if alias != name and alias in names:
                problems.append(f"pools[{i}].alias: {alias!r} is the name of another pool")
        plugin = pool.get("dns_plugin")
        if isinstance(plugin, str) and plugin not in dns_names:
            problems.append(f"pools[{i}].dns_plugin: no dns_configs entry named {plugin!r}")
        fallback = pool.get("fallback")
        for j, other in enumerate(fallback if isinstance(fallback, list) else []):
            if other not in names or other == name:
                problems.append(f"pools[{i}].fallback[{j}]: {other!r} is not another configured pool")
    return problems


# --- checks of validated settings -------------------------------------------------------------------


def settings_problems(settings: Settings) -> list[str]:
    """What the field types cannot say: bounds between keys, TLS files, the Redis topology, tag patterns."""
    problems = []
    delays = [("config", settings.config)] + [
        (f"pools[{i}]", pool)
        for i, pool in enumerate(settings.pools)
        # a pool inheriting both bounds repeats the :config: problem; report it once
        if (pool.check_loop_delay_min, pool.check_loop_delay_max)
        != (settings.config.check_loop_delay_min, settings.config.check_loop_delay_max)
    ]
    for where, item in delays:
        if item.check_loop_delay_min > item.check_loop_delay_max:
            problems.append(
                f"{where}.check_loop_delay_min: must not exceed check_loop_delay_max "
                f"({item.check_loop_delay_min:g} > {item.check_loop_delay_max:g})"
            )
    cfg = settings.config
    problems += [
        f"pools[{i}].size: {pool.size} is above config.max_pool_size ({cfg.max_pool_size})"
        for i, pool in enumerate(settings.pools)
        if pool.size > cfg.max_pool_size
    ]
    for i, pool in enumerate(settings.pools):
        scale = pool.autoscale
        if scale is not None and scale.min > scale.max:
            problems.append(f"pools[{i}].autoscale.min: must not exceed autoscale.max ({scale.min} > {scale.max})")
        if scale is not None and scale.max > cfg.max_pool_size:
            problems.append(
                f"pools[{i}].autoscale.max: {scale.max} is above config.max_pool_size ({cfg.max_pool_size})"
            )
    problems += pair_problems(
        "config.api_tls_cert_file", cfg.api_tls_cert_file, "config.api_tls_key_file", cfg.api_tls_key_file
    )
    problems += settings.redis.problems()
    for tag, pattern in settings.tagfilter.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"tagfilter.{tag}: not a valid regular expression: {exc}")
    return problems

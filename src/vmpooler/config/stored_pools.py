"""Pools kept in Redis: what a process started without ``:pools:`` serves, as the original does.

The original publishes every configured pool as ``vmpooler__pool__<name>`` (each key of the pool as a
string, the aliases joined with commas) and lists the names in ``vmpooler__pools``; a process whose
configuration has no ``:pools:`` section serves the pools found there. Such records are read, never
written back nor deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from vmpooler.config.problems import describe
from vmpooler.config.settings import PoolSettings, Settings


def pools_from_records(records: Mapping[str, Mapping[str, str]]) -> tuple[list[PoolSettings], list[str]]:
    """The pools the records describe, in name order, and one problem per record that is not a valid pool
    (that pool is left out; the others are served)."""
    pools: list[PoolSettings] = []
    problems: list[str] = []
    for name, fields in sorted(records.items()):
        raw: dict[str, object] = {key: value for key, value in fields.items() if value != ""}
        raw["name"] = name
        if isinstance(alias := raw.get("alias"), str):
            raw["alias"] = [a for a in alias.split(",") if a]
        try:
            pools.append(PoolSettings.model_validate(raw))
        except ValidationError as exc:
            problems += describe(exc, ("redis", f"vmpooler__pool__{name}"))
    return pools, problems


def with_stored_pools(settings: Settings, records: Mapping[str, Mapping[str, str]]) -> tuple[Settings, list[str]]:
    """``settings`` serving the pools stored in Redis, and the problems with records left out."""
    pools, problems = pools_from_records(records)
    return settings.with_stored_pools(pools), problems

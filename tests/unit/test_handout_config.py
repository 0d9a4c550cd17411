"""A pool's handout_check and fallback keys: defaults that change nothing, and problems that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from vmpooler.config import parse_settings
from vmpooler.errors import ConfigError


def problems(pool: dict[str, Any], *others: dict[str, Any]) -> list[str]:
    try:
        parse_settings({"pools": [{"name": "a", "template": "t", "size": 1, **pool}, *others]}, env={})
    except ConfigError as exc:
        return list(exc.problems)
    return []


def test_a_pool_without_the_keys_keeps_todays_behaviour() -> None:
    settings, _ = parse_settings({"pools": [{"name": "a", "template": "t", "size": 1}]}, env={})
    (pool,) = settings.pools
    assert (pool.handout_check, pool.fallback, pool.fallback_after_s, pool.quarantine_hours) == (None, [], 0, 24)
    assert pool.provider_options == {}  # the new keys are the core's, not the provider's


@pytest.mark.parametrize(
    ("pool", "problem"),
    [
        ({"handout_check": {"tcp": 22, "ssh": 22}}, "pools[0].handout_check: name exactly one of tcp, ssh or http"),
        ({"handout_check": {"budget_ms": 100}}, "pools[0].handout_check: name exactly one of tcp, ssh or http"),
        ({"handout_check": {"ssh": 22, "budget_ms": 0}}, "pools[0].handout_check.budget_ms: must be ≥ 1, got 0"),
        ({"handout_check": {"http": "health"}}, "pools[0].handout_check: http must be a path starting with /"),
        ({"handout_check": {"ssh": 22, "tpc": 1}}, "pools[0].handout_check.tpc"),
        ({"fallback": ["nope"]}, "pools[0].fallback[0]: 'nope' is not another configured pool"),
        ({"fallback": ["a"]}, "pools[0].fallback[0]: 'a' is not another configured pool"),
        ({"fallback_after_s": -1}, "pools[0].fallback_after_s: must be ≥ 0, got -1"),
    ],
)
def test_a_bad_value_names_its_key_path(pool: dict[str, Any], problem: str) -> None:
    found = problems(pool)
    assert any(line.startswith(problem) for line in found), found


def test_a_fallback_naming_another_pool_is_accepted() -> None:
    assert (
        problems(
            {"fallback": ["b"], "handout_check": {"http": "https://{hostname}:8443/ok"}},
            {"name": "b", "template": "t", "size": 1},
        )
        == []
    )

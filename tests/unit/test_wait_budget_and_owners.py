"""The wait budget a checkout asks for, and the :priorities: and :quotas: sections that decide owners."""

from __future__ import annotations

import pytest

from vmpooler.api.services.waiting import quota_limits, wait_budget
from vmpooler.config import parse_settings
from vmpooler.errors import BadRequest, ConfigError


@pytest.mark.parametrize(
    ("query", "prefer", "expected"),
    [
        (None, None, (0.0, False)),
        ("30", None, (30.0, False)),
        ("2.5", "wait=100", (2.5, False)),  # the query wins
        (None, "wait=100", (100.0, True)),
        (None, "respond-async, wait=15", (15.0, True)),
        (None, "handling=lenient; wait=7", (7.0, True)),
        (None, "return=minimal", (0.0, False)),
        ("0", None, (0.0, False)),
        ("600", None, (600.0, False)),
    ],
)
def test_the_wait_budget_comes_from_the_query_or_the_prefer_header(
    query: str | None, prefer: str | None, expected: tuple[float, bool]
) -> None:
    assert wait_budget(query, prefer) == expected


@pytest.mark.parametrize(
    ("query", "prefer"), [("601", None), ("-1", None), ("x", None), ("inf", None), (None, "wait=1e9")]
)
def test_a_wait_out_of_range_is_refused_naming_the_range(query: str | None, prefer: str | None) -> None:
    with pytest.raises(BadRequest, match="0 to 600"):
        wait_budget(query, prefer)


def test_owners_weights_and_quotas_come_from_the_configuration() -> None:
    settings, _ = parse_settings(
        {
            "pools": [
                {"name": "a", "template": "t", "size": 1, "alias": "x"},
                {"name": "b", "template": "t", "size": 1, "alias": "x"},
            ],
            "priorities": {"groups": {"ci": "jenkins gha"}, "classes": {"high": 3}, "members": {"ci": "high"}},
            "quotas": {"default": {"running": 4}, "owners": {"ci": {"pools": {"x": 2}}}},
        },
        env={},
    )
    assert settings.priorities.owner_of("gha") == "ci" and settings.priorities.owner_of("alice") == "alice"
    assert settings.priorities.owner_of(None) == ""
    assert settings.priorities.weight_of("ci") == 3 and settings.priorities.weight_of("alice") == 1
    limits = quota_limits(settings, "ci", {"x": 1, "a": 1})
    assert limits is not None and limits.running is None and limits.pools == (("x", 2, 1, ("a", "b")),)
    assert quota_limits(settings, "alice", {"a": 1}) is not None  # the default
    assert quota_limits(settings, "", {"a": 1}) is None  # no token, no quota


def test_a_bad_weight_or_quota_names_its_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {"pools": [], "priorities": {"classes": {"low": 0}}, "quotas": {"owners": {"bob": {"running": -1}}}},
            env={},
        )
    text = "\n".join(caught.value.problems)
    assert "priorities.classes" in text and "quotas.owners.bob.running" in text

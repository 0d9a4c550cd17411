"""The ``:redis:`` keys for Sentinel, TLS and ACL, and ``:config: api_tls_*``: parsing and key-path errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from vmpooler.config import SentinelAddress, Settings, parse_settings
from vmpooler.errors import ConfigError
from vmpooler.validate import validate_file


def parse(raw: dict[str, Any]) -> tuple[Settings, list[str]]:
    return parse_settings(raw, env={})


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env={})
    return caught.value.problems


@pytest.fixture
def pem(tmp_path: Path) -> str:
    """A file that exists and is readable; its content does not matter to the configuration checks."""
    path = tmp_path / "some.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_sentinels_as_host_port_strings_or_mappings() -> None:
    settings, warnings = parse(
        {
            "redis": {
                "sentinels": ["s1:26380", "s2", {"host": "s3", "port": 26381}, "[::1]:26382", "[fe80::1]"],
                "master_name": "mymaster",
                "sentinel_username": "watcher",
                "sentinel_password": "s3cret",
            }
        }
    )

    redis = settings.redis
    assert warnings == []
    assert redis.sentinels == [
        SentinelAddress(host="s1", port=26380),
        SentinelAddress(host="s2", port=26379),
        SentinelAddress(host="s3", port=26381),
        SentinelAddress(host="::1", port=26382),
        SentinelAddress(host="fe80::1", port=26379),
    ]
    assert (redis.master_name, redis.sentinel_username, redis.sentinel_password_value()) == (
        "mymaster",
        "watcher",
        "s3cret",
    )
    assert "s3cret" not in repr(redis)
    assert not redis.embedded


def test_defaults_keep_one_plain_server_or_the_embedded_one() -> None:
    redis = parse({})[0].redis

    assert (redis.sentinels, redis.master_name, redis.tls, redis.tls_verify) == ([], None, False, True)
    assert redis.embedded
    assert not parse({"redis": {"server": "r"}})[0].redis.embedded


@pytest.mark.parametrize(
    ("redis", "expected"),
    [
        ({"sentinels": ["s1:26379"]}, "redis.master_name: required when redis.sentinels is set"),
        ({"master_name": "mymaster"}, "redis.sentinels: required when redis.master_name is set"),
        (
            {"sentinels": ["s1"], "master_name": "m", "server": "r"},
            "redis.server: leave it out when redis.sentinels is set (the sentinels name the master)",
        ),
        (
            {"sentinels": ["s1:notaport"], "master_name": "m"},
            "redis.sentinels[0].port: must be an integer, got 'notaport'",
        ),
        ({"sentinels": ["s1", "s2:0"], "master_name": "m"}, "redis.sentinels[1].port: must be ≥ 1, got 0"),
        ({"sentinels": [":26379"], "master_name": "m"}, "redis.sentinels[0].host: must not be empty"),
        ({"sentinels": "s1:26379", "master_name": "m"}, "redis.sentinels: must be a list, got 's1:26379'"),
        ({"sentinels": ["s1"], "master_name": ""}, "redis.master_name: must not be empty"),
        ({"tls_verify": "perhaps"}, "redis.tls_verify: must be true or false, got 'perhaps'"),
        (
            {"tls": True, "tls_ca_file": "/nonexistent/ca.pem"},
            "redis.tls_ca_file: cannot read '/nonexistent/ca.pem': No such file or directory",
        ),
    ],
)
def test_each_problem_names_its_key(redis: dict[str, Any], expected: str) -> None:
    assert problems_of({"redis": redis}) == [expected]


def test_tls_files_with_tls_off_are_an_error_not_a_silent_clear_text_connection(pem: str) -> None:
    problems = problems_of({"redis": {"tls_ca_file": pem, "tls_cert_file": pem, "tls_key_file": pem}})

    assert problems == [
        "redis.tls_ca_file: set, but redis.tls is false",
        "redis.tls_cert_file: set, but redis.tls is false",
        "redis.tls_key_file: set, but redis.tls is false",
    ]


def test_a_client_key_needs_its_certificate_but_a_certificate_may_hold_its_key(pem: str) -> None:
    assert problems_of({"redis": {"tls": True, "tls_key_file": pem}}) == [
        "redis.tls_cert_file: required when redis.tls_key_file is set"
    ]
    redis = parse({"redis": {"tls": True, "tls_ca_file": pem, "tls_cert_file": pem, "tls_verify": False}})[0].redis
    assert (redis.tls_ca_file, redis.tls_cert_file, redis.tls_key_file, redis.tls_verify) == (pem, pem, None, False)


def test_an_unreadable_tls_file_is_reported_with_its_path(tmp_path: Path) -> None:
    assert problems_of({"redis": {"tls": True, "tls_cert_file": str(tmp_path)}}) == [
        f"redis.tls_cert_file: cannot read '{tmp_path}': Is a directory"
    ]


def test_api_tls_keys(pem: str, tmp_path: Path) -> None:
    config = parse({"config": {"api_tls_cert_file": pem, "api_tls_key_file": pem}})[0].config
    assert (config.api_tls_cert_file, config.api_tls_key_file) == (pem, pem)
    assert parse({})[0].config.api_tls_cert_file is None

    missing = str(tmp_path / "missing.key")
    assert problems_of({"config": {"api_tls_cert_file": pem, "api_tls_key_file": missing}}) == [
        f"config.api_tls_key_file: cannot read '{missing}': No such file or directory"
    ]
    assert problems_of({"config": {"api_tls_key_file": pem}}) == [
        "config.api_tls_cert_file: required when config.api_tls_key_file is set"
    ]


def test_validate_config_reports_redis_problems_offline(tmp_path: Path) -> None:
    path = tmp_path / "vmpooler.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            :redis:
              sentinels:
                - 'redis-sentinel-0.redis:26379'
                - host: 'redis-sentinel-1.redis'
              tls: true
              tls_verify: false
            """
        )
    )

    errors, warnings = validate_file(path, env={})

    assert errors == ["redis.master_name: required when redis.sentinels is set"]
    # the file has no :pools: (they are then read from Redis); nothing else to warn about
    assert warnings == ["pools: none configured; the pools published in Redis (vmpooler__pools) are served"]

"""Loading, validating and reporting on vmpooler configuration (vmpooler.config)."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from vmpooler.config import (
    GlobalSettings,
    PoolSettings,
    RedisSettings,
    Settings,
    load_settings,
    parse_settings,
)
from vmpooler.domain import PoolTarget
from vmpooler.errors import ConfigError
from vmpooler.metrics.sections import StatsdSection
from vmpooler.validate import validate_file

SEED_README_CONFIG = """\
---
:vsphere:
  server: 'vsphere.company.com'
  username: 'vmpooler'
  password: 'swimsw1msw!m'

:redis:
  server: 'redis.company.com'

:config:
  logfile: '/var/log/vmpooler.log'

:pools:
  - name: 'debian-7-i386'
    template: 'Templates/debian-7-i386'
    folder: 'Pooled VMs/debian-7-i386'
    pool: 'Pooled VMs/debian-7-i386'
    datastore: 'vmstorage'
    size: 5
  - name: 'debian-7-x86_64'
    template: 'Templates/debian-7-x86_64'
    folder: 'Pooled VMs/debian-7-x86_64'
    pool: 'Pooled VMs/debian-7-x86_64'
    datastore: 'vmstorage'
    size: 5
"""


def pool(name: str = "centos-7", **extra: Any) -> dict[str, Any]:
    return {"name": name, "template": f"templates/{name}", "size": 1, **extra}


def parse(raw: dict[str, Any], env: dict[str, str] | None = None) -> Settings:
    settings, _ = parse_settings(raw, env or {})
    return settings


def problems_of(raw: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env or {})
    return caught.value.problems


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# --- reading what the original reads ----------------------------------------------------------------


def test_seed_readme_config_loads_as_written(tmp_path: Path) -> None:
    settings, warnings = load_settings(write(tmp_path / "vmpooler.yaml", SEED_README_CONFIG), env={})

    assert settings.redis.server == "redis.company.com"
    assert settings.config.logfile == "/var/log/vmpooler.log"
    assert settings.providers["vsphere"]["server"] == "vsphere.company.com"
    assert [p.name for p in settings.pools] == ["debian-7-i386", "debian-7-x86_64"]
    first = settings.pools[0]
    assert (first.template, first.size) == ("Templates/debian-7-i386", 5)
    assert first.provider == "vsphere"  # the only provider configured
    assert first.provider_options == {
        "folder": "Pooled VMs/debian-7-i386",
        "pool": "Pooled VMs/debian-7-i386",
        "datastore": "vmstorage",
    }
    assert warnings == ["vsphere: old top-level provider section, read as providers.vsphere"]


def test_symbol_and_plain_keys_read_the_same() -> None:
    symbols = yaml.safe_load(":config:\n  task_limit: 4\n:pools:\n  - {name: a, template: t, size: 2}\n")
    plain = yaml.safe_load("config:\n  task_limit: 4\npools:\n  - {name: a, template: t, size: 2}\n")

    assert ":config" in symbols
    assert parse(symbols) == parse(plain)
    assert parse(symbols).config.task_limit == 4


def test_nested_symbol_keys_of_auth_and_providers_are_read() -> None:
    raw = yaml.safe_load(":auth:\n  provider: ldap\n  :ldap:\n    host: ldap.example.com\n:providers:\n  :dummy:\n")

    settings = parse(raw)

    assert settings.auth == {"provider": "ldap", "ldap": {"host": "ldap.example.com"}}
    assert settings.providers == {"dummy": {}}


def test_the_same_section_given_twice_is_an_error() -> None:
    assert problems_of({":config": {}, "config": {}}) == ["config: given twice (as :config: and config:); keep one"]


def test_string_numbers_and_booleans_are_coerced() -> None:
    settings = parse(
        {
            "config": {"task_limit": "5", "experimental_features": "true", "usage_stats": "0"},
            "pools": [pool(size="5")],
        }
    )

    assert settings.config.task_limit == 5
    assert settings.config.experimental_features is True
    assert settings.config.usage_stats is False
    assert settings.pools[0].size == 5


def test_alias_may_be_a_string_or_a_list() -> None:
    settings = parse({"pools": [pool("a", alias="centos"), pool("b", alias=["centos", "el"]), pool("c")]})

    assert [p.alias for p in settings.pools] == [["centos"], ["centos", "el"], []]
    assert [p.name for p in settings.pools_for("centos")] == ["a", "b"]
    assert [p.name for p in settings.pools_for("b")] == ["b"]
    assert settings.pools_for("nothing") == []
    assert settings.pool("c") is settings.pools[2]
    assert settings.pool("nothing") is None


def test_an_empty_document_is_an_empty_configuration() -> None:
    settings = parse({})

    assert settings.pools == []
    assert settings.providers == {}
    assert settings.auth is None


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("site_name", "vmpooler"),
        ("logfile", None),
        ("task_limit", 10),
        ("ondemand_clone_limit", 10),
        ("max_ondemand_instances_per_request", 10),
        ("ondemand_request_ttl", 5),
        ("timeout", 15),
        ("timeout_notification", 5),
        ("max_vm_retries", 3),
        ("vm_checktime", 1),
        ("vm_lifetime", 24),
        ("vm_lifetime_auth", None),
        ("max_lifetime_upper_limit", None),
        ("ready_ttl", 60),
        ("prefix", ""),
        ("allowed_tags", None),
        ("max_tries", 3),
        ("retry_factor", 10),
        ("check_loop_delay_min", 5),
        ("check_loop_delay_max", 60),
        ("check_loop_delay_decay", 2.0),
        ("experimental_features", False),
        ("usage_stats", False),
        ("request_logger", False),
        ("backend_weight", {}),
        ("purge_unconfigured_resources", False),
        ("create_linked_clones", True),
        ("check_ready_vm_hostname_for_mismatch", True),
    ],
)
def test_global_defaults_follow_the_original(key: str, default: object) -> None:
    assert getattr(parse({}).config, key) == default


def test_redis_defaults() -> None:
    redis = parse({}).redis

    assert redis == RedisSettings()
    assert (redis.server, redis.port, redis.db, redis.data_ttl) == (None, 6379, 0, 168)
    assert (redis.connection_pool_size, redis.connection_pool_timeout, redis.reconnect_attempts) == (10, 5, 10)
    assert redis.socket_timeout == 5.0
    assert redis.password_value() is None
    assert parse({"redis": {"password": "s3cret"}}).redis.password_value() == "s3cret"
    assert "s3cret" not in repr(parse({"redis": {"password": "s3cret"}}).redis)


def test_pools_inherit_unset_values_from_config() -> None:
    settings = parse(
        {
            "config": {"timeout": 30, "ready_ttl": 120, "check_loop_delay_max": 90},
            "pools": [pool("a"), pool("b", timeout=7, check_hostname_for_mismatch=False)],
        }
    )
    a, b = settings.pools

    assert (a.timeout, a.ready_ttl, a.check_loop_delay_max, a.timeout_notification) == (30, 120, 90, 5)
    assert a.check_hostname_for_mismatch is True
    assert (b.timeout, b.ready_ttl, b.check_hostname_for_mismatch) == (7, 120, False)


def test_pool_provider_defaults() -> None:
    assert parse({"pools": [pool()]}).pools[0].provider == "dummy"
    only_one = {"providers": {"ec2": {}}, "pools": [pool()]}
    assert parse(only_one).pools[0].provider == "ec2"
    two = {"providers": {"ec2": {}, "gce": {}}, "pools": [pool(), pool("b", provider="gce")]}
    assert [p.provider for p in parse(two).pools] == ["dummy", "gce"]


def test_pool_target_and_lookups() -> None:
    settings = parse(
        {
            "config": {"domain": "old.example.com"},
            "dns_configs": {"gcp": {"dns_class": "gcp", "domain": "gcp.example.com", "project": "p"}},
            "providers": {"dummy": {"filename": "/tmp/x"}},
            "pools": [pool("a", dns_plugin="gcp", folder="f"), pool("b", domain="b.example.com"), pool("c")],
        }
    )
    a, b, c = settings.pools

    assert a.target() == PoolTarget("a", "templates/a", {"folder": "f"})
    assert [settings.domain_for(p) for p in (a, b, c)] == ["gcp.example.com", "b.example.com", "old.example.com"]
    assert settings.dns_configs["gcp"].model_extra == {"project": "p"}
    assert settings.provider_options("dummy") == {"filename": "/tmp/x"}
    assert settings.provider_options("absent") == {}


def test_old_and_deprecated_keys_are_read_with_a_warning() -> None:
    settings, warnings = parse_settings(
        {"config": {"purge_unconfigured_folders": True, "domain": "example.com"}}, env={}
    )

    assert settings.config.purge_unconfigured_resources is True
    assert settings.config.domain == "example.com"
    assert "config.purge_unconfigured_folders: deprecated, use purge_unconfigured_resources" in warnings
    assert any(w.startswith("config.domain: deprecated") for w in warnings)


def test_input_is_not_modified() -> None:
    raw = {":config": {"task_limit": "3"}, "vsphere": {"server": "v"}, "pools": [pool()]}
    before = copy.deepcopy(raw)

    parse(raw, {"TASK_LIMIT": "9"})

    assert raw == before


# --- the environment --------------------------------------------------------------------------------


def test_environment_overrides_win_over_the_file() -> None:
    env = {
        "TASK_LIMIT": "25",
        "SITE_NAME": "lab",
        "EXPERIMENTAL_FEATURES": "true",
        "CREATE_LINKED_CLONES": "false",
        "REDIS_SERVER": "redis.lab",
        "REDIS_PORT": "6380",
        "REDIS_PASSWORD": "pw",
        "STATSD_SERVER": "statsd.lab",
        "STATSD_PORT": "8126",
        "GRAPHITE_PREFIX": "ignored-without-a-server",
    }

    settings = parse({"config": {"task_limit": 2, "site_name": "file"}, "redis": {"server": "r"}}, env)

    assert settings.config.task_limit == 25
    assert settings.config.site_name == "lab"
    assert settings.config.experimental_features is True
    assert settings.config.create_linked_clones is False
    assert (settings.redis.server, settings.redis.port, settings.redis.password_value()) == ("redis.lab", 6380, "pw")
    assert settings.statsd == StatsdSection(server="statsd.lab", port=8126)
    assert settings.graphite is None


def test_auth_and_ldap_environment_overrides() -> None:
    env = {"AUTH_PROVIDER": "ldap", "LDAP_HOST": "ldap.lab", "LDAP_PORT": "636", "LDAP_BASE": "ou=people"}

    settings = parse({}, env)

    assert settings.auth == {
        "provider": "ldap",
        "ldap": {"host": "ldap.lab", "port": "636", "base": "ou=people"},
    }


def test_empty_environment_variables_are_ignored() -> None:
    assert parse({"config": {"task_limit": 3}}, {"TASK_LIMIT": ""}).config.task_limit == 3


def test_a_bad_environment_value_names_the_variable() -> None:
    assert problems_of({}, {"TASK_LIMIT": "lots"}) == [
        "config.task_limit: must be an integer, got 'lots' (from environment variable TASK_LIMIT)"
    ]


def test_env_parameter_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_LIMIT", "77")

    assert parse_settings({}, env={})[0].config.task_limit == 10
    assert parse_settings({})[0].config.task_limit == 77


# --- where the configuration comes from -------------------------------------------------------------


def test_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "vmpooler.yaml", "config: {site_name: default-file}\n")
    explicit = write(tmp_path / "other.yaml", "config: {site_name: explicit}\n")

    settings, _ = load_settings(explicit, env={"VMPOOLER_CONFIG": "config: {site_name: blob}\n"})

    assert settings.config.site_name == "explicit"


def test_source_order_without_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    named = write(tmp_path / "named.yaml", "config: {site_name: named-file}\n")
    blob = "config: {site_name: blob}\n"

    assert load_settings(env={})[0].config.site_name == "vmpooler"  # nothing at all: empty config
    write(tmp_path / "vmpooler.yaml", "config: {site_name: default-file}\n")
    assert load_settings(env={})[0].config.site_name == "default-file"
    assert load_settings(env={"VMPOOLER_CONFIG_FILE": str(named)})[0].config.site_name == "named-file"
    both = {"VMPOOLER_CONFIG": blob, "VMPOOLER_CONFIG_FILE": str(named)}
    assert load_settings(env=both)[0].config.site_name == "blob"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as caught:
        load_settings(missing, env={})
    assert caught.value.problems == [f"config file: file not found: {missing}"]

    with pytest.raises(ConfigError) as caught:
        load_settings(env={"VMPOOLER_CONFIG_FILE": str(missing)})
    assert caught.value.problems == [f"VMPOOLER_CONFIG_FILE: file not found: {missing}"]


def test_extra_config_is_deep_merged_relative_to_the_main_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(
        tmp_path / "conf.d" / "extra.yaml",
        """\
        :config:
          task_limit: 20
        :pools:
          - name: a
            size: 9
          - {name: b, template: tb, size: 1}
        """,
    )
    main = write(
        tmp_path / "vmpooler.yaml",
        """\
        :config:
          extra_config: conf.d/extra.yaml
          site_name: main
        :pools:
          - {name: a, template: ta, size: 1, folder: fa}
        """,
    )

    settings, _ = load_settings(main, env={})

    assert (settings.config.task_limit, settings.config.site_name) == (20, "main")
    a, b = settings.pools
    assert (a.name, a.template, a.size, a.provider_options) == ("a", "ta", 9, {"folder": "fa"})
    assert (b.name, b.template) == ("b", "tb")


def test_extra_config_from_the_environment_and_missing_files(tmp_path: Path) -> None:
    write(tmp_path / "one.yaml", "config: {prefix: 'x-'}\n")
    main = write(tmp_path / "vmpooler.yaml", "config: {site_name: main}\n")

    settings, _ = load_settings(main, env={"EXTRA_CONFIG": "one.yaml"})
    assert settings.config.prefix == "x-"

    with pytest.raises(ConfigError) as caught:
        load_settings(main, env={"EXTRA_CONFIG": "one.yaml, two.yaml"})
    assert caught.value.problems == [f"config.extra_config: file not found: {tmp_path / 'two.yaml'}"]


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"pools": [pool("a"), pool("b"), pool("c", size=-1)]}, "pools[2].size: must be ≥ 0, got -1"),
        ({"pools": [{"name": "a", "size": 1}]}, "pools[0].template: required"),
        ({"config": {"task_limit": "lots"}}, "config.task_limit: must be an integer, got 'lots'"),
        ({"pools": [pool(), pool()]}, "pools[1].name: duplicate pool name 'centos-7'"),
        ({"config": {"task_limit": 0}}, "config.task_limit: must be ≥ 1, got 0"),
        ({"config": {"usage_stats": "maybe"}}, "config.usage_stats: must be true or false, got 'maybe'"),
        ({"config": {"prefix": 5}}, "config.prefix: must be a string, got 5"),
        ({"config": {"check_loop_delay_min": 0}}, "config.check_loop_delay_min: must be > 0, got 0"),
        ({"config": ["task_limit"]}, "config: must be a mapping, got a list"),
        ({"pools": {"a": pool()}}, "pools: must be a list, got a mapping"),
        ({"pools": ["centos-7"]}, "pools[0]: must be a mapping, got 'centos-7'"),
        ({"pools": [pool(name="")]}, "pools[0].name: must not be empty"),
        ({"pools": [pool(alias=["x", 3])]}, "pools[0].alias[1]: must be a string, got 3"),
        ({"redis": {"port": 70000}}, "redis.port: must be ≤ 65535, got 70000"),
        ({"dns_configs": {"gcp": {"domain": 1}}}, "dns_configs.gcp.domain: must be a string, got 1"),
        ({"pools": [pool("a"), pool("b", alias="a")]}, "pools[1].alias: 'a' is the name of another pool"),
        ({"pools": [pool(dns_plugin="gcp")]}, "pools[0].dns_plugin: no dns_configs entry named 'gcp'"),
        (
            {"config": {"check_loop_delay_min": 30, "check_loop_delay_max": 10}},
            "config.check_loop_delay_min: must not exceed check_loop_delay_max (30 > 10)",
        ),
        (
            {"pools": [pool(check_loop_delay_min=90)]},
            "pools[0].check_loop_delay_min: must not exceed check_loop_delay_max (90 > 60)",
        ),
    ],
)
def test_each_problem_names_its_path(raw: dict[str, Any], expected: str) -> None:
    assert problems_of(raw) == [expected]


def test_pool_name_pattern() -> None:
    [problem] = problems_of({"pools": [pool("centos 7")]})

    assert problem.startswith("pools[0].name: must match ")
    assert problem.endswith("got 'centos 7'")


def test_a_bad_tagfilter_regex() -> None:
    [problem] = problems_of({"tagfilter": {"url": "(unclosed"}})

    assert problem.startswith("tagfilter.url: not a valid regular expression:")


def test_a_top_level_that_is_not_a_mapping() -> None:
    assert problems_of(["config"]) == ["top level: must be a mapping of sections, got a list"]


def test_all_problems_are_reported_together() -> None:
    problems = problems_of(
        {
            "config": {"task_limit": "lots", "timeout": 0},
            "redis": {"db": -2},
            "pools": [pool("a", size=-1), {"name": "b"}, pool("a")],
        }
    )

    assert sorted(problems) == sorted(
        [
            "config.task_limit: must be an integer, got 'lots'",
            "config.timeout: must be ≥ 1, got 0",
            "redis.db: must be ≥ 0, got -2",
            "pools[0].size: must be ≥ 0, got -1",
            "pools[1].template: required",
            "pools[1].size: required",
            "pools[2].name: duplicate pool name 'a'",
        ]
    )
    with pytest.raises(ConfigError, match=r"invalid configuration:\n  "):
        parse_settings({"pools": [{"name": "b"}]}, env={})


def test_unknown_keys_warn_with_a_suggestion() -> None:
    settings, warnings = parse_settings(
        {"config": {"tsk_limit": 3}, "redis": {"sever": "r"}, "pool": [], "zzz": 1}, env={}
    )

    assert settings.config.task_limit == 10
    assert warnings == [
        "pool: unknown key, ignored (did you mean 'pools'?)",
        "zzz: unknown key, ignored",
        "config.tsk_limit: unknown key, ignored (did you mean 'task_limit'?)",
        "redis.sever: unknown key, ignored (did you mean 'server'?)",
    ]


def test_upstream_keys_we_do_not_implement_are_reported_as_having_no_effect_and_honoured_ones_are_not() -> None:
    _, warnings = parse_settings(
        {"config": {"dlq_enabled": True, "circuit_breaker_timeout": 30, "create_folders": True}}, env={}
    )

    assert [w.split(": accepted, has no effect here: ")[0] for w in warnings] == ["config.dlq_enabled"]


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", ":config:\n  task_limit: 3\n   oops: 4\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(bad, env={})

    [problem] = caught.value.problems
    assert problem.startswith(f"{bad}: YAML syntax error at line 3, column 8:")


def test_a_yaml_syntax_error_in_the_environment_blob() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"VMPOOLER_CONFIG": "pools: [\n"})

    assert caught.value.problems[0].startswith("VMPOOLER_CONFIG: YAML syntax error at line")


@given(st.integers(min_value=0, max_value=10_000))
def test_any_size_up_to_the_bound_round_trips(size: int) -> None:
    assert parse({"pools": [pool(size=size)]}).pools[0].size == size


@given(st.integers(min_value=10_001, max_value=10**30))
def test_a_size_above_max_pool_size_names_its_pool(size: int) -> None:
    assert problems_of({"pools": [pool(size=size)]}) == [f"pools[0].size: {size} is above config.max_pool_size (10000)"]


@given(st.integers(max_value=-1), st.integers(min_value=0, max_value=5))
def test_any_negative_size_names_its_pool(size: int, index: int) -> None:
    pools = [pool(f"p{i}") for i in range(index)] + [pool("bad", size=size)]

    assert problems_of({"pools": pools}) == [f"pools[{index}].size: must be ≥ 0, got {size}"]


def test_models_are_usable_on_their_own() -> None:
    assert GlobalSettings().timeout == 15
    standalone = PoolSettings(name="a", template="t", size=1, folder="f")  # type: ignore[call-arg]
    assert standalone.provider_options == {"folder": "f"}
    assert standalone.provider == "dummy"


# --- validate_file ----------------------------------------------------------------------------------


def test_validate_file_accepts_the_installed_dummy_without_a_section(tmp_path: Path) -> None:
    path = write(tmp_path / "vmpooler.yaml", "pools:\n  - {name: a, template: t, size: 1}\n")

    assert validate_file(path, env={}) == ([], [])


def test_validate_file_checks_provider_options(tmp_path: Path) -> None:
    path = write(
        tmp_path / "vmpooler.yaml",
        """\
        :providers:
          :dummy:
            connection_pool_size: many
        :pools:
          - {name: a, template: t, size: 1}
        """,
    )

    errors, _ = validate_file(path, env={})

    assert errors == ["providers.dummy.connection_pool_size: must be an integer, got 'many'"]


def test_validate_file_names_a_provider_class_that_is_not_installed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "vmpooler.yaml",
        """\
        providers:
          cloud: {provider_class: nosuchcloud}
        pools:
          - {name: a, template: t, size: 1, provider: cloud}
          - {name: b, template: t, size: 1, provider: elsewhere}
        """,
    )

    errors, _ = validate_file(path, env={})

    assert errors == [
        "providers.cloud: no provider class 'nosuchcloud' is installed (known: dummy, ec2, libvirt, qemu, vsphere)",
        "pools[1].provider: no provider class 'elsewhere' is installed (known: dummy, ec2, libvirt, qemu, vsphere)",
    ]


def test_validate_file_reports_instead_of_raising(tmp_path: Path) -> None:
    path = write(tmp_path / "vmpooler.yaml", "config: {tsk_limit: 1}\npools:\n  - {name: a, size: -1}\n")

    errors, warnings = validate_file(path, env={})

    assert errors == ["pools[0].template: required", "pools[0].size: must be ≥ 0, got -1"]
    assert warnings == ["config.tsk_limit: unknown key, ignored (did you mean 'task_limit'?)"]
    assert validate_file(tmp_path / "absent.yaml", env={}) == (
        [f"config file: file not found: {tmp_path / 'absent.yaml'}"],
        [],
    )


def test_quoted_symbol_keys_are_read_too() -> None:
    # yaml.safe_dump of a Ruby-style config quotes the keys: ':config:' keeps both colons
    settings, warnings = parse_settings(
        {":config:": {"task_limit": 4}, ":pools:": [{"name": "p", "template": "t", "size": 1}]}, env={}
    )
    assert settings.config.task_limit == 4 and settings.pools[0].name == "p"
    assert warnings == []

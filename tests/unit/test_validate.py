"""validate-config runs exactly start-up's checks, and every key the original reads is honoured or reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from vmpooler.cli.main import app
from vmpooler.config import NO_EFFECT, parse_settings
from vmpooler.validate import validate_file

POOL = {"name": "deb", "template": "Templates/deb", "size": 1}
VSPHERE = {"server": "vcenter.example", "username": "u", "password": "p"}

# configs `serve` refuses, each with the line both commands must print
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("auth provider", {"auth": {"provider": "kerberos"}}, "auth.provider: must be one of dummy, ldap, got 'kerberos'"),
    ("ldap without its section", {"auth": {"provider": "ldap"}}, "auth.ldap: required when auth.provider is ldap"),
    ("auth policy", {"auth": {"provider": "dummy", "token_lifetime": -1}}, "auth.token_lifetime: must be > 0"),
    ("rate limit", {"rate_limits": {"vm_creation": {"limit": 0}}}, "rate_limits.vm_creation.limit"),
    ("statsd port", {"statsd": {"server": "127.0.0.1", "port": "eighty"}}, "statsd.port: must be an integer"),
    ("graphite port", {"graphite": {"server": "127.0.0.1", "port": 70000}}, "graphite.port: must be ≤ 65535"),
    ("prometheus names", {"prometheus": {"names": "new"}}, "prometheus.names"),
    ("prometheus endpoint", {"prometheus": {"prometheus_endpoint": "metrics"}}, "prometheus.prometheus_endpoint"),
    (
        "a vSphere pool's own key",
        {"providers": {"vsphere": VSPHERE}, "pools": [{**POOL, "provider": "vsphere"}]},
        "pools[0].folder: required",
    ),
    (
        "an EC2 pool key with no EC2 meaning",
        {"providers": {"ec2": {"region": "us-east-1"}}, "pools": [{**POOL, "provider": "ec2", "project": "p1"}]},
        "pools[0].project: not read by the EC2 provider",
    ),
    (
        "a qemu pool's machine key",
        {"providers": {"qemu": {}}, "pools": [{**POOL, "provider": "qemu", "cpus": 0}]},
        "pools[0].cpus: must be ≥ 1, got 0",
    ),
    ("provider not installed", {"pools": [{**POOL, "provider": "openstack"}]}, "no provider class 'openstack'"),
]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.output


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"pools": [POOL], **data}))
    return path


@pytest.mark.parametrize(("config", "line"), [(c, line) for _, c, line in REFUSED], ids=[r[0] for r in REFUSED])
def test_what_serve_refuses_validate_config_refuses_with_the_same_line(
    tmp_path: Path, config: dict[str, Any], line: str
) -> None:
    path = write(tmp_path / "bad.yaml", config)

    check_code, check_out = cli("validate-config", str(path))
    assert check_code == 1, check_out  # first: a file validate-config passed would start serving
    serve_code, serve_out = cli("serve", "-c", str(path), "--port", "0", "--state-dir", str(tmp_path / "state"))

    assert serve_code == 2, serve_out
    served = [text.strip() for text in serve_out.splitlines() if line in text]
    checked = [text.strip() for text in check_out.splitlines() if line in text]
    assert served and served == checked


def test_a_file_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(":config:\n  site_name: 'Z\xfcrich'\n".encode("latin-1"))

    for args in (("validate-config", str(path)), ("serve", "-c", str(path), "--port", "0")):
        code, out = cli(*args)
        assert code in (1, 2)
        assert "is not UTF-8 text (byte 0xfc" in out
        assert "Traceback" not in out


def _with_key(path: str) -> tuple[dict[str, Any], str]:
    """A configuration that sets ``path`` (``*`` = the first pool or a provider), and the path as reported."""
    parts = path.split(".")
    if parts[0] == "pools":
        return {"pools": [{**POOL, parts[2]: 1}]}, f"pools[0].{parts[2]}"
    if parts[0] == "providers":
        return {"providers": {"dummy": {parts[2]: True}}}, f"providers.dummy.{parts[2]}"
    if len(parts) == 1:
        return {parts[0]: {"enabled": True}}, parts[0]
    return {parts[0]: {parts[1]: 1}}, path


@pytest.mark.parametrize("key", sorted(NO_EFFECT))
def test_each_key_the_original_reads_and_we_do_not_use_is_reported(key: str) -> None:
    data, reported = _with_key(key)
    _, warnings = parse_settings({"pools": [POOL], **data}, env={})

    assert f"{reported}: accepted, has no effect here: {NO_EFFECT[key]}" in warnings


def test_the_no_effect_line_is_printed_by_validate_config_and_at_start_up(tmp_path: Path) -> None:
    # the auth error stops serve once it has printed its warnings, so the test starts nothing
    path = write(tmp_path / "c.yaml", {"config": {"dlq_enabled": True}, "auth": {"provider": "kerberos"}})
    line = f"config.dlq_enabled: accepted, has no effect here: {NO_EFFECT['config.dlq_enabled']}"

    assert line in cli("validate-config", str(path))[1]
    assert line in cli("serve", "-c", str(path), "--port", "0")[1]


def test_an_environment_override_names_its_variable_and_a_dns_class_is_reported() -> None:
    raw = {"pools": [POOL], "dns_configs": {"gcp": {"dns_class": "gcp", "domain": "example.com"}}}
    _, warnings = parse_settings(raw, env={"MAX_TRIES": "5", "VMPOOLER_DEBUG": "true"})

    joined = "\n".join(warnings)
    assert "config.max_tries: accepted, has no effect here:" in joined
    assert "(from environment variable MAX_TRIES)" in joined
    assert "dns_configs.gcp.dns_class: accepted, has no effect here:" in joined
    assert "VMPOOLER_DEBUG (environment): accepted, has no effect here:" in joined


def test_keys_that_only_a_provider_no_pool_uses_reads_are_reported(tmp_path: Path) -> None:
    config = {"config": {"create_folders": True, "purge_unconfigured_resources": True}}
    path = write(tmp_path / "c.yaml", config)

    errors, warnings = validate_file(path, env={})

    assert errors == []
    assert "config.create_folders: accepted, has no effect here: only the vSphere provider reads it" in "\n".join(
        warnings
    )
    assert any(
        w.startswith("providers.dummy.purge_unconfigured_resources: accepted, has no effect here") for w in warnings
    )


def test_a_vsphere_pool_takes_the_keys_and_earns_no_note(tmp_path: Path) -> None:
    config = {
        "config": {"create_folders": True, "purge_unconfigured_resources": True},
        "providers": {"vsphere": VSPHERE},
        "pools": [{**POOL, "provider": "vsphere", "folder": "vmpooler/deb"}],
    }
    errors, warnings = validate_file(write(tmp_path / "c.yaml", config), env={})

    assert errors == [] and not [w for w in warnings if "has no effect" in w]


def test_the_prometheus_instance_label_and_the_originals_linked_clone_quirk_are_explained() -> None:
    raw = {"pools": [POOL], "prometheus": {"prefix": "ci"}, "config": {"create_linked_clones": False}}
    _, warnings = parse_settings(raw, env={})
    joined = "\n".join(warnings)

    assert "prometheus.prefix: accepted, has no effect here" in joined
    assert "config.create_linked_clones: false is honoured here (full clones)" in joined
    _, original_names = parse_settings({**raw, "prometheus": {"prefix": "ci", "names": "original"}}, env={})
    assert "prometheus.prefix" not in "\n".join(original_names)

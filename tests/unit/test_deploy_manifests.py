"""The Kubernetes example (deploy/kubernetes) and the Dockerfile agree with each other and with the code:
YAML that parses, the commands and probes vmpooler really has, and a configuration that validates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from vmpooler.cli.main import app
from vmpooler.config import parse_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
API_PORT = 4567
CONFIG_PATH = "/etc/vmpooler/vmpooler.yaml"


def documents() -> list[dict[str, Any]]:
    found = [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert found, f"no manifests under {KUBERNETES}"
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


def deployment(component: str) -> dict[str, Any]:
    [found] = [d for d in by_kind("Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return found


def container(component: str) -> dict[str, Any]:
    [only] = deployment(component)["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_every_manifest_parses_into_the_expected_kinds() -> None:
    kinds = sorted(doc["kind"] for doc in documents())

    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Namespace", "PodDisruptionBudget", "Secret", "Service"]
    for doc in documents():
        assert doc["apiVersion"] and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "vmpooler"


@pytest.mark.parametrize("component", ["api", "manager"])
def test_both_deployments_run_two_replicas_of_one_image_with_real_commands(component: str) -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    spec = deployment(component)["spec"]

    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert container(component)["args"][0] == component and component in commands
    assert container(component)["image"] == container("api")["image"] and ":" in container("api")["image"]
    assert CONFIG_PATH in container(component)["args"]
    assert container(component)["resources"]["requests"] and container(component)["resources"]["limits"]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_api_listens_on_4567_and_is_probed_on_healthcheck() -> None:
    api = container("api")
    args = api["args"]

    assert args[args.index("--port") + 1] == str(API_PORT) and args[args.index("--workers") + 1] == "2"
    assert [port["containerPort"] for port in api["ports"]] == [API_PORT]
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"] == {"path": "/healthcheck", "port": API_PORT}


def test_the_manager_is_probed_by_the_manager_alive_command() -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    probe = container("manager")["livenessProbe"]["exec"]["command"]

    assert probe[:2] == ["vmpooler", "manager-alive"] and probe[1] in commands
    assert CONFIG_PATH in probe


def test_the_service_sends_4567_to_the_api_pods() -> None:
    [service] = by_kind("Service")

    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(API_PORT, API_PORT)]
    assert service["spec"]["selector"].items() <= deployment("api")["spec"]["template"]["metadata"]["labels"].items()


def test_the_configmap_and_the_example_secret_make_a_valid_sentinel_configuration(tmp_path: Path) -> None:
    [configmap] = by_kind("ConfigMap")
    [secret] = by_kind("Secret")
    raw = yaml.safe_load(configmap["data"]["vmpooler.yaml"])
    credentials = tmp_path / "credentials.yaml"
    credentials.write_text(secret["stringData"]["credentials.yaml"])
    mounted = {m["mountPath"] for m in container("api")["volumeMounts"]}
    # the file's keys are Ruby-style symbols: `:config:` reads as ":config"
    assert str(Path(raw[":config"]["extra_config"]).parent) in mounted, "extra_config must point into a mount"
    raw[":config"]["extra_config"] = str(credentials)

    settings, warnings = parse_settings(raw, env={})

    assert warnings == []
    assert settings.redis.master_name and len(settings.redis.sentinels) == 3
    assert settings.redis.password_value() and settings.redis.sentinel_password_value()
    assert settings.pools


def test_the_dockerfile_matches_the_manifests() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert f"EXPOSE {API_PORT}" in dockerfile
    assert re.search(r"HEALTHCHECK .*\n.*127\.0\.0\.1:4567/healthcheck", dockerfile)
    assert 'ENTRYPOINT ["vmpooler"]' in dockerfile
    assert f'CMD ["serve", "--config", "{CONFIG_PATH}"]' in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE), "the image runs as the manifests' runAsUser"
    assert "FROM ${PYTHON_IMAGE} AS build" in dockerfile and "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile

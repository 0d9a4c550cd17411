"""`vmpooler manager-alive`, the manager container's exec liveness probe, against a real manager process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


def write_config(tmp_path: Path, redis_port: int) -> Path:
    raw = {
        ":redis:": {"server": "127.0.0.1", "port": redis_port, "socket_timeout": 1},
        ":providers:": {":dummy:": {"filename": str(tmp_path / "inventory.json")}},
        ":pools:": [{"name": "alpha", "template": "templates/alpha", "size": 1}],
    }
    path = tmp_path / f"vmpooler-{redis_port}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def probe(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VMPOOLER, "manager-alive", "-c", str(config), *extra], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_the_probe_passes_while_this_hosts_manager_heartbeats_and_fails_after(tmp_path: Path, redis_port: int) -> None:
    config = write_config(tmp_path, redis_port)
    assert probe(config).returncode == 1, "no manager yet"

    with (tmp_path / "manager.log").open("wb") as log:
        manager = subprocess.Popen([VMPOOLER, "manager", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while (result := probe(config)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert result.returncode == 0, result.stderr
        assert f":{manager.pid}" in result.stdout
        other = probe(config, "--host", "some-other-pod")
        assert other.returncode == 1 and "no manager on some-other-pod" in other.stderr
    finally:
        manager.terminate()
        assert manager.wait(30) == 0, (tmp_path / "manager.log").read_text()[-2000:]

    # a manager that stops retires its heartbeat
    assert probe(config).returncode == 1


def test_an_unreachable_redis_does_not_fail_the_probe(tmp_path: Path) -> None:
    result = probe(write_config(tmp_path, free_port()))

    assert result.returncode == 0, result.stderr
    assert "cannot ask Redis" in result.stdout


def test_a_configuration_without_redis_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "vmpooler.yaml"
    path.write_text("{}\n")

    result = probe(path)

    assert result.returncode == 2 and "redis.server: not set" in result.stderr

"""Relative provider paths (the example's dummy inventory) are under the state folder, wherever one starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import yaml

from tests.support.processes import VMPOOLER, wait_until
from tests.support.servers import wait_for_port
from vmpooler.store.embedded import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vmpooler.yaml"


def test_the_example_fills_when_started_from_another_folder(tmp_path: Path) -> None:
    elsewhere, state = tmp_path / "elsewhere", tmp_path / "state"
    elsewhere.mkdir()
    port = free_port()
    command = [VMPOOLER, "serve", "-c", str(EXAMPLE), "--state-dir", str(state), "--port", str(port)]
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=elsewhere, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, process, timeout=30)

            def ready() -> int:
                pools = httpx.get(f"http://127.0.0.1:{port}/api/v3/status", timeout=5).json()["pools"]
                return sum(pool["ready"] for pool in pools.values())

            wait_until(lambda: ready() >= 5, 60, pause=0.5, what="the example's pools filling")
        finally:
            process.terminate()
            process.wait(30)
    output = (tmp_path / "serve.log").read_text()
    assert "No such file or directory" not in output
    assert (state / "dummy-inventory.json").is_file()  # the example's relative `filename`, under --state-dir
    assert not (elsewhere / ".vmpooler").exists() and not list(elsewhere.iterdir())


def test_validate_config_checks_the_folders_serve_would_make(tmp_path: Path) -> None:
    config = tmp_path / "vmpooler.yaml"
    raw = yaml.safe_load(EXAMPLE.read_text())
    config.write_text(yaml.safe_dump(raw))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    def validate(state_dir: Path) -> subprocess.CompletedProcess[str]:
        command = [VMPOOLER, "validate-config", str(config), "--state-dir", str(state_dir)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    fine = validate(tmp_path / "new" / "state")
    assert fine.returncode == 0, fine.stderr
    assert not (tmp_path / "new").exists()  # checking makes nothing
    refused = validate(blocker / "state")
    assert refused.returncode == 1
    assert "providers.dummy.filename: cannot create" in refused.stderr
    assert str(blocker) in refused.stderr.replace("\n", "")


def test_serve_refuses_what_validate_config_refuses(tmp_path: Path, redis_port: int) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = tmp_path / "vmpooler.yaml"
    config.write_text(
        yaml.safe_dump({**yaml.safe_load(EXAMPLE.read_text()), ":redis:": {"server": "127.0.0.1", "port": redis_port}})
    )
    for role in ("manager", "serve"):
        command = [VMPOOLER, role, "-c", str(config), "--state-dir", str(blocker / "state")]
        if role == "serve":
            command += ["--port", str(free_port())]
        wide = {**os.environ, "COLUMNS": "400"}  # one message, one line
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env=wide)
        assert done.returncode != 0
        assert "providers.dummy.filename: cannot create" in done.stderr and "Traceback" not in done.stderr

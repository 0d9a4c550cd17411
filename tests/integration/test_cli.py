"""The `vmpooler` command as operators run it: validate-config's exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vmpooler.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMPOOLER, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_shipped_example_is_valid() -> None:
    result = run("validate-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_a_bad_file_names_each_key_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        ":config:\n  task_limit: lots\n  tsk_limit: 3\n"
        ":pools:\n  - name: a\n    template: t\n    size: 1\n  - name: b\n    size: -1\n"
    )
    result = run("validate-config", str(bad))
    assert result.returncode == 1
    assert "config.task_limit: must be an integer, got 'lots'" in result.stderr
    assert "pools[1].size: must be ≥ 0, got -1" in result.stderr
    assert "pools[1].template: required" in result.stderr
    assert "did you mean 'task_limit'" in result.stderr  # unknown keys warn


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(":pools:\n  - name: a\n    template: [unclosed\n")
    result = run("validate-config", str(bad))
    assert result.returncode == 1
    assert "line" in result.stderr


def test_serve_refuses_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(":pools:\n  - name: a\n    template: t\n    size: many\n")
    result = run("serve", "-c", str(bad), "--port", "0")
    assert result.returncode == 2
    assert "pools[0].size" in result.stderr

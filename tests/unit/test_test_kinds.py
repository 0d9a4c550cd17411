"""The suite's own rules: a test is marked by the real system it needs, and under CI a skip is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest

@pytest.fixture
def vcsim():
    return "a simulator"

def test_needs_the_simulator(vcsim):
    assert vcsim

def test_plain():
    assert True

def test_skips():
    pytest.skip("no frobnicator on this machine")
"""


def pytest_in(folder: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """pytest with only the test_kinds plugin, on ``folder`` (outside this suite's conftest)."""
    (folder / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "1"} if ci else {})
    env["PYTHONPATH"] = str(ROOT)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugin under test: starts in 0.4 s, not 3
    command = [sys.executable, "-m", "pytest", "-p", "tests.support.test_kinds", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, *args, str(folder)], check=False, cwd=folder, env=env, capture_output=True, text=True
    )


def test_a_test_using_a_simulator_is_marked_slow_and_left_out_of_the_fast_run(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, "-m", "not slow", "--collect-only", ci=False)
    assert "test_plain" in done.stdout and "test_skips" in done.stdout, done.stdout
    assert "test_needs_the_simulator" not in done.stdout, done.stdout
    assert "1 deselected" in done.stdout, done.stdout


def test_a_skip_passes_locally_but_fails_under_ci(tmp_path: Path) -> None:
    local = pytest_in(tmp_path, "-k", "skips", ci=False)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    under_ci = pytest_in(tmp_path, "-k", "skips", ci=True)
    assert under_ci.returncode == 1, under_ci.stdout
    assert "skipped under CI, which must run every test: " in under_ci.stdout, under_ci.stdout
    assert "no frobnicator" in under_ci.stdout, under_ci.stdout


def test_every_long_running_module_exists() -> None:
    from tests.support.test_kinds import LONG_RUNNING

    missing = [entry for entry in LONG_RUNNING if not _exists(entry)]
    assert missing == [], "renamed or removed: update LONG_RUNNING in tests/support/test_kinds.py"


def _exists(entry: str) -> bool:
    """A module path, or ``path::test_name`` naming a test defined in it."""
    module, _, test = entry.partition("::")
    path = ROOT / module
    return path.is_file() and (not test or f"def {test}(" in path.read_text())

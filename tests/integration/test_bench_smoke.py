"""``make bench`` end to end at its smallest: every benchmark runs and the summary has every target's row."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_ALL = ROOT / "bench" / "run_all.py"


def bench_summary() -> ModuleType:
    """bench/summary.py, which names the rows (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "bench" / "summary.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def written_files() -> dict[Path, int | None]:
    """What a full run writes besides BENCHMARKS.md (which people edit too): path -> mtime, None if absent."""
    paths = [ROOT / "bench" / "results.json", *(ROOT / "docs").glob("bench-latency-*.png")]
    return {path: path.stat().st_mtime_ns if path.exists() else None for path in paths}


@pytest.mark.slow
def test_run_all_smoke_prints_every_target_row(tmp_path: Path) -> None:
    rows = bench_summary().ROWS
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "VMPOOLER_"))}
    env["COLUMNS"] = "300"  # one table row per line, so each row can be found whole
    before = written_files()
    done = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--no-write"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "issue #9 targets" in output
    lines = output.splitlines()
    for key, _benchmark, what, goal in rows:
        row = [line for line in lines if what in line and goal in line]
        assert row, f"no summary row for {key}: {what!r}\n{output[-4000:]}"
        assert any(verdict in row[0] for verdict in ("PASS", "MISS", "—", "NOT RUN")), row[0]
    assert written_files() == before, "--no-write must leave the recorded results alone"

"""The original (Ruby) vmpooler 3.9.1, run through ``run.sh`` of ``$VMPOOLER_ORIGINAL`` for side-by-side tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vmpooler.store.embedded import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def original_home() -> Path:
    """Where run.sh lives: ``$VMPOOLER_ORIGINAL``, else ``../shared/upstream`` beside the checkout."""
    given = os.environ.get("VMPOOLER_ORIGINAL")
    home = Path(given) if given else REPO_ROOT.parent / "shared" / "upstream"
    return home if home.is_absolute() else (REPO_ROOT / home).resolve()


def require_original() -> Path:
    """run.sh's folder; without it (or without Ruby) the test is skipped by name, except under CI."""
    home = original_home()
    missing = None
    if not (home / "run.sh").is_file():
        missing = f"the original vmpooler is not at {home} (set VMPOOLER_ORIGINAL to the folder of its run.sh)"
    elif shutil.which("ruby") is None:
        missing = f"Ruby is not installed (run `{home / 'run.sh'} setup`)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; under CI the compatibility tests must run")
        pytest.skip(missing)
    return home


class OriginalVmpooler:
    """One instance of the original (API + pool manager) on its own port, state folder and given Redis."""

    def __init__(self, home: Path, config: Path, redis_port: int, state_dir: Path) -> None:
        self.home = home
        self.config = config
        self.redis_port = redis_port
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float = 240) -> None:
        # run.sh runs the original in state_dir; Ruby's dummy provider resolves a relative `filename` there
        command = [str(self.home / "run.sh"), *args, "--state-dir", str(self.state_dir)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def start(self, wait_full: bool = True) -> OriginalVmpooler:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--redis-port", str(self.redis_port), "--config", str(self.config)]
        self._run("start", *args, *(["--wait-full", "150"] if wait_full else []))
        return self

    def stop(self) -> None:
        self._run("stop", timeout=60)

    def log_text(self) -> str:
        return "".join(
            (self.state_dir / name).read_text(errors="replace")
            for name in ("vmpooler.log", "vmpooler.out")
            if (self.state_dir / name).exists()
        )


def write_shared_config(path: Path, raw: dict[str, Any], redis_port: int) -> Path:
    """The YAML both implementations read, in the original's form: sections, providers and DNS configs
    as Ruby Symbols (``:pools:``). Only the Redis port is set here: run.sh gives the original its Redis
    through REDIS_PORT, so both read this one file."""
    sections = {**raw, "redis": {"server": "127.0.0.1", "port": redis_port}}
    document = {
        f":{name}:": {f":{k}:": v for k, v in value.items()} if name in SYMBOL_KEYED else value
        for name, value in sections.items()
    }
    # Ruby reads `:pools:` as a Symbol only unquoted; PyYAML quotes it
    path.write_text(re.sub(r"'(:[\w-]+:)':", r"\1", yaml.safe_dump(document, sort_keys=False)))
    return path


SYMBOL_KEYED = ("providers", "dns_configs")

"""Runs the `vmpooler` command (serve, api, manager) as real processes for tests: start, signal, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from tests.support.servers import wait_for_port
from tests.support.waiting import until_sync
from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
ROLES = ("serve", "api", "manager")


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    """Write ``raw`` as the YAML file the processes read; returns ``path``."""
    path.write_text(yaml.safe_dump(raw))
    return path


class VmpoolerProcess:
    """One `vmpooler <role>` process with its output in ``<logdir>/<name>.<start>.log``.

    ``start`` may be called again after the process ended (a restart); an API keeps its port, so
    clients need not learn a new address. Give several managers sharing ``logdir`` distinct names.
    """

    def __init__(self, role: str, config: Path, logdir: Path, state_dir: Path | None = None, name: str = "") -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.role = role
        self.config = config
        self.logdir = logdir
        self.state_dir = state_dir or logdir / "state"
        self.port = free_port() if role != "manager" else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name or (role if role == "manager" else f"{role}-{self.port}")
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def _log_path(self, start: int) -> Path:
        return self.logdir / f"{self.name}.{start}.log"

    def start(self, wait: bool = True) -> VmpoolerProcess:
        assert not self.alive(), "already running"
        self.starts += 1
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path(self.starts).open("wb")
        command = [VMPOOLER, self.role, "-c", str(self.config), "--state-dir", str(self.state_dir)]
        if self.role != "manager":
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
        # PYTHONUNBUFFERED: a process killed with -9 must not take its last log lines with it
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if wait and self.role != "manager":
            wait_for_port(self.port, self.process, timeout=30)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is cleaned up."""
        self.send(signal.SIGKILL)
        self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.process is not None, "not started"
        code = self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process and wait for it; kill -9 it if it overstays ``timeout`` (the test then fails).
        Returns its exit code (0 for a process never started)."""
        if self.process is None:
            return 0
        self.send(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log_text(self) -> str:
        """Every start's output so far, oldest first."""
        parts = []
        for start in range(1, self.starts + 1):
            path = self._log_path(start)
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)


def wait_until(condition: Callable[[], object], timeout: float, pause: float = 0.1, what: str = "condition") -> float:
    """Poll ``condition()`` until it is true; returns the seconds it took. Fails the test on timeout."""
    return until_sync(condition, what, timeout=timeout, pause=pause).seconds

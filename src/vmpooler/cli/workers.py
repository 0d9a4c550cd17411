"""Several API worker processes on one listening socket, for more than one core's worth of requests.

The parent binds the socket and forks the workers before any event loop or thread exists; each worker
serves the API on the inherited socket (the kernel spreads connections between them). The parent runs
the manager too when asked (``serve``), forwards SIGTERM/SIGINT to the workers, and exits non-zero if a
worker dies unexpectedly, so the service manager restarts the whole unit rather than run degraded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from vmpooler.cli.runtime import Roles, run
from vmpooler.config import Settings
from vmpooler.errors import StoreError
from vmpooler.store.embedded import EmbeddedRedis, die_with_parent

log = logging.getLogger("vmpooler")


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_workers(
    settings: Settings,
    roles: Roles,
    host: str,
    port: int,
    state_dir: Path,
    workers: int,
    setup_logging: Callable[[], None],
) -> int:
    """Returns the exit code. Must be called before any event loop or thread is started."""
    embedded: EmbeddedRedis | None = None
    if settings.redis.embedded:
        # one private Redis for the whole unit; the workers and the manager all use it
        embedded = EmbeddedRedis(state_dir / "redis")
        try:
            embedded.start()
        except StoreError as exc:  # e.g. another service holds the state dir: one line, not a traceback
            setup_logging()
            log.error("%s", exc)
            return 1
        settings = settings.model_copy(update={"redis": embedded.client_settings(settings.redis)})
    sock = listen(host, port)
    children = [_fork_worker(settings, host, port, state_dir, sock, setup_logging) for _ in range(workers)]
    sock.close()
    setup_logging()
    log.info("%d API workers on http://%s:%d: pids %s", workers, host, port, children)
    failed, stopping = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_reap, args=(children, stopping, failed), name="worker-reaper", daemon=True)
    watcher.start()
    try:
        if roles.manager:
            uvloop.run(run(settings, Roles(api=False, manager=True), host, port, state_dir))
        else:
            # blocked only now, after the fork, so the workers keep their default handlers
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
            signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        stopping.set()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        watcher.join(30)
        if embedded is not None:
            embedded.stop()
    return 1 if failed.is_set() else 0


def _fork_worker(
    settings: Settings, host: str, port: int, state_dir: Path, sock: socket.socket, setup_logging: Callable[[], None]
) -> int:
    pid = os.fork()
    if pid:
        return pid
    # the worker: serve the API on the inherited socket until told to stop, then exit here
    die_with_parent()
    setup_logging()
    code = 0
    try:
        uvloop.run(run(settings, Roles(api=True, manager=False), host, port, state_dir, sockets=[sock]))
    except BaseException:
        logging.getLogger("vmpooler").exception("API worker %d failed", os.getpid())
        code = 1
    os._exit(code)


def _reap(children: list[int], stopping: threading.Event, failed: threading.Event) -> None:
    """Wait for the workers (only them: os.wait() would also reap the embedded redis-server); one that
    ends while the service is not stopping takes the whole service down."""
    remaining = set(children)
    while remaining:
        for pid in list(remaining):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                remaining.discard(pid)
                if not stopping.is_set():
                    log.error("API worker %d exited (status %d); stopping the service", pid, status)
                    failed.set()
                    os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)

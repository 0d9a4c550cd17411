"""`serve` (and `api --workers N`) as a family of processes under a supervising parent.

The parent starts the embedded Redis when one is needed, binds the API socket, and forks the children
before any event loop or thread exists: the API worker(s), serving on the inherited socket (the kernel
spreads connections between them), and for ``serve`` the pool manager, so a busy manager never makes a
request wait. The parent then only supervises: a child that dies is restarted after a backoff that grows
while it keeps dying; SIGTERM/SIGINT stop every child, then the embedded Redis; and each child asks the
kernel to SIGTERM it should the parent die, even by kill -9, so nothing is left orphaned.
Metrics go through prometheus_client's multiprocess files under the state dir, so any API worker's
/prometheus shows the counts of every process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvloop

from vmpooler.errors import ConfigError, StoreError, VmpoolerError
from vmpooler.logs import stop_logging
from vmpooler.metrics import multiprocess
from vmpooler.runtime import Launch, Roles, run
from vmpooler.store.embedded import EmbeddedRedis, die_with_parent

log = logging.getLogger("vmpooler")

#: the signals the parent waits for; blocked in the parent, unblocked in each child
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
#: a child that ran this long before dying is restarted at once; one dying sooner waits longer each time
STEADY_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 30.0
#: how long stopping children may take before they are killed
STOP_GRACE_SECONDS = 30.0
#: a child's exit code for "this configuration cannot run": restarting it would fail the same way forever
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass(slots=True)
class Child:
    """One supervised process: what it runs, and when it last started or should start again."""

    role: str
    body: Callable[[], None]
    pid: int = 0
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = field(default=None)
    exit_code: int | None = None

    def backoff(self) -> float:
        return min(MAX_BACKOFF_SECONDS, 0.5 * 2.0 ** max(self.quick_deaths - 1, 0))


def run_workers(launch: Launch, workers: int, setup_logging: Callable[[], None]) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code. Must be called before any event loop or thread."""
    settings, roles, state_dir = launch.settings, launch.roles, launch.state_dir
    embedded: EmbeddedRedis | None = None
    if settings.redis.embedded:
        # one private Redis for the whole family (started before the signals are blocked: it inherits the mask)
        embedded = EmbeddedRedis(state_dir / "redis")
        try:
            embedded.start()
        except StoreError as exc:  # e.g. another service holds the state dir: one line, not a traceback
            setup_logging()
            log.error("%s", exc)
            return 1
        settings = settings.model_copy(update={"redis": embedded.client_settings(settings.redis)})
        launch = dataclasses.replace(launch, settings=settings)
    setup_logging()
    try:
        multiprocess.enable(state_dir.resolve() / "prometheus")
    except OSError as exc:
        # metrics still work, per process: a scrape shows the counts of the worker that answers it
        log.warning("cannot keep shared metrics under %s (%s): /prometheus shows one process's", state_dir, exc)
    sock: socket.socket | None = None
    children: list[Child] = []
    try:
        if roles.api:
            try:
                sock = listen(launch.host, launch.port)
            except OSError as exc:
                log.error("cannot listen on %s:%d: %s", launch.host, launch.port, exc.strerror or exc)
                return 1
            api = dataclasses.replace(launch, roles=Roles(api=True, manager=False, demo_traffic=roles.demo_traffic))
            for _ in range(workers):
                children.append(Child("API worker", _body(dataclasses.replace(api, sockets=[sock]))))
        if roles.manager:
            children.append(Child("manager", _body(dataclasses.replace(launch, roles=Roles(api=False, manager=True)))))
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        for child in children:
            _start(child, setup_logging, embedded)
        log.info("supervising %s (pid %d)", ", ".join(f"{c.role} {c.pid}" for c in children), os.getpid())
        if not _supervise(children, setup_logging, embedded):
            return 1
    finally:
        _stop_all(children)
        if sock is not None:
            sock.close()
        if embedded is not None:
            embedded.stop()
    return 0


def _body(launch: Launch) -> Callable[[], None]:
    def body() -> None:
        uvloop.run(run(launch))

    return body


def _start(child: Child, setup_logging: Callable[[], None], embedded: EmbeddedRedis | None) -> None:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        child.pid, child.started_at, child.restart_at, child.exit_code = pid, time.monotonic(), None, None
        return
    # the child: runs its body, then exits here (never returns into the parent's code)
    code = 0
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        if embedded is not None:
            embedded.forget_in_child()
        die_with_parent()
        if os.getppid() != parent:
            os._exit(0)  # the parent died before the kernel was told to signal us
        setup_logging()
        child.body()
    except KeyboardInterrupt:
        pass
    except ConfigError as exc:  # one line per problem, as validate-config says it; no traceback
        logging.getLogger("vmpooler").error("%s cannot start: %s", child.role, "; ".join(exc.problems))
        code = EXIT_CONFIG
    except VmpoolerError as exc:
        logging.getLogger("vmpooler").error("%s %d failed: %s", child.role, os.getpid(), exc)
        code = 1
    except BaseException:
        logging.getLogger("vmpooler").exception("%s %d failed", child.role, os.getpid())
        code = 1
    stop_logging()
    logging.shutdown()
    os._exit(code)


def _supervise(children: list[Child], setup_logging: Callable[[], None], embedded: EmbeddedRedis | None) -> bool:
    """Reap and restart children until SIGTERM or SIGINT arrives (True), or a child finds that the
    configuration cannot run (False)."""
    while True:
        now = time.monotonic()
        due = [c.restart_at for c in children if c.restart_at is not None]
        wait = max(0.0, min(due) - now) if due else 1.0
        received = signal.sigtimedwait(SIGNALS, min(wait, 1.0))
        if received is not None and received.si_signo in (signal.SIGTERM, signal.SIGINT):
            log.info("stopping: %s", signal.Signals(received.si_signo).name)
            return True
        for child in children:
            if child.restart_at is None and _reaped(child):
                if child.exit_code == EXIT_CONFIG:
                    log.error("stopping: the %s cannot run with this configuration", child.role)
                    return False
                lived = time.monotonic() - child.started_at
                child.quick_deaths = 0 if lived >= STEADY_SECONDS else child.quick_deaths + 1
                child.restart_at = time.monotonic() + (child.backoff() if child.quick_deaths else 0.0)
                log.error(
                    "%s %d died after %.1fs; restarting it in %.1fs",
                    child.role,
                    child.pid,
                    lived,
                    child.restart_at - time.monotonic(),
                )
            if child.restart_at is not None and child.restart_at <= time.monotonic():
                _start(child, setup_logging, embedded)
                log.info("%s restarted as pid %d", child.role, child.pid)


def _reaped(child: Child) -> bool:
    """True when the child has ended (and is now reaped). Only our own children are waited for:
    os.wait() would also reap the embedded redis-server, which its Popen must do."""
    try:
        done, status = os.waitpid(child.pid, os.WNOHANG)
    except ChildProcessError:
        done, status = child.pid, 0
    if done:
        child.exit_code = os.waitstatus_to_exitcode(status)
        multiprocess.process_dead(child.pid)
    return bool(done)


def _stop_all(children: list[Child]) -> None:
    running = [c for c in children if c.restart_at is None and c.pid]
    for child in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        running = [c for c in running if not _reaped(c)]
        if running:
            time.sleep(0.05)
    for child in running:
        log.error("%s %d did not stop within %.0fs: killing it", child.role, child.pid, STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)

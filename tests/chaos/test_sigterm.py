"""SIGTERM to `vmpooler serve` while clones are in flight and requests are being served: requests already
accepted get their whole reply, the process exits 0 within its grace period, the interrupted clones stay
recorded as pending, and the next start finishes or cleans them up; nothing leaks."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import scenario
from tests.chaos.census import take_census, where_now
from tests.chaos.figures import Figures
from tests.chaos.traffic import Traffic, unexpected_errors
from tests.support.processes import VmpoolerProcess, wait_until, write_config
from vmpooler.states import VMState

pytestmark = pytest.mark.slow

#: alpha boots at once and serves checkouts; beta's VMs boot for longer than the grace period, so its
#: clones are in flight at the signal and still unfinished when the process exits
SIZES = {"alpha": 3, "beta": 3}
BOOT_SECONDS = {"alpha": 0.3, "beta": 20.0}
#: the service's grace period: the manager gives in-flight work 10 s (``Manager.run``), uvicorn 5 s
GRACE = 10.0
SLOW_REQUESTS = 4
SLOW_BODY = b'{"alpha": "1"}'
#: how much of the body a slow request sends before the signal
SENT_FIRST = 5


def sigterm_config(redis_port: int, inventory: Path) -> dict[str, Any]:
    raw = scenario.config(redis_port, inventory, SIZES, task_limit=6)
    base = raw[":providers:"].pop(":dummy:")
    raw[":providers:"] = {
        pool: {**base, "provider_class": "dummy", "ready_delay": boot} for pool, boot in BOOT_SECONDS.items()
    }
    for pool in raw[":pools:"]:
        pool["provider"] = pool["name"]
    return raw


def begin_slow_checkout(port: int) -> socket.socket:
    """A checkout whose headers are sent but whose body is not finished: accepted, and still in flight."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(
        b"POST /api/v3/vm HTTP/1.1\r\nHost: vmpooler\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(SLOW_BODY)
        + SLOW_BODY[:SENT_FIRST]
    )
    return conn


def finish_slow_checkout(conn: socket.socket) -> bytes:
    """Send the rest of the body and read the whole reply (empty if the connection was dropped)."""
    with conn:
        try:
            conn.sendall(SLOW_BODY[SENT_FIRST:])
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        except OSError:
            return b""
    return reply


@pytest.mark.timeout(180)
def test_sigterm_finishes_requests_and_leaves_interrupted_clones_recorded(
    chaos_redis_port: int, tmp_path: Path, figures: Figures
) -> None:
    inventory = tmp_path / "inventory.json"
    config = write_config(tmp_path / "vmpooler.yaml", sigterm_config(chaos_redis_port, inventory))
    serve = VmpoolerProcess("serve", config, tmp_path / "logs").start()
    try:

        def filling() -> bool:
            census = take_census(chaos_redis_port, list(SIZES))
            return (
                census.counts("alpha")[VMState.READY] == SIZES["alpha"]
                and census.counts("beta")[VMState.PENDING] == SIZES["beta"]
            )

        wait_until(filling, 60, pause=0.2, what="alpha ready and beta cloning")
        with Traffic([serve.url], ["alpha"], workers=4, hold=0.05, keepalive=False, timeout=20) as traffic:
            time.sleep(1.0)
            slow = [begin_slow_checkout(serve.port) for _ in range(SLOW_REQUESTS)]
            time.sleep(0.3)  # the server has read their headers: each request has begun
            in_flight = take_census(chaos_redis_port, list(SIZES)).members(VMState.PENDING, "beta")
            signalled = time.monotonic()
            serve.send(signal.SIGTERM)
            time.sleep(0.5)
            slow_replies = [finish_slow_checkout(conn) for conn in slow]
            code = serve.wait(GRACE + 5)
            exit_seconds = time.monotonic() - signalled
        after_exit = where_now(chaos_redis_port, sorted(in_flight))

        serve.start()  # the next start resumes or cleans up what the stop left

        def settled() -> bool:
            states = where_now(chaos_redis_port, sorted(in_flight)).values()
            return all(state in (VMState.READY, VMState.DESTROYED) for state in states)

        wait_until(settled, 60, pause=0.25, what="interrupted clones resumed or cleaned up")
        after_restart = where_now(chaos_redis_port, sorted(in_flight))
        assert serve.stop() == 0
        census = take_census(chaos_redis_port, list(SIZES), inventory)
    finally:
        serve.stop()

    accepted = [r for r in traffic.replies if r.started < signalled - 0.1]
    straddling = [r for r in traffic.replies if r.started < signalled < r.ended]
    complete = [r for r in slow_replies if r.startswith(b"HTTP/1.1 ") and r.rstrip().endswith(b"}")]
    figures.record("sigterm.clones_in_flight", len(in_flight))
    figures.record("sigterm.requests_in_flight", len(slow) + len(straddling))
    answered = len(complete) + sum(r.status is not None for r in straddling)
    figures.record("sigterm.in_flight_requests_completed", answered)
    figures.record("sigterm.exit_code", code)
    figures.record("sigterm.exit_seconds", exit_seconds)
    figures.record("sigterm.leaked", len(census.leaked()))
    assert code == 0
    assert exit_seconds <= GRACE + 3, f"exit took {exit_seconds:.1f}s"
    assert len(complete) == SLOW_REQUESTS, f"in-flight requests cut off: {slow_replies}"
    assert accepted and unexpected_errors(accepted) == [], unexpected_errors(accepted)[:5]
    # their boot outlasts the grace period: the stop must leave them recorded, not half-forgotten
    assert in_flight and all(state is VMState.PENDING for state in after_exit.values()), after_exit
    assert all(state in (VMState.READY, VMState.DESTROYED) for state in after_restart.values())
    assert census.leaked() == set()
    assert census.in_several_states() == {}

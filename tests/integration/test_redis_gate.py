"""A frozen Redis (SIGSTOP) costs a call under a second, the next ones milliseconds, not the socket
timeout each; calls go through again within a second of Redis resuming (store/gate.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from tests.support.servers import start_redis
from vmpooler.errors import StoreUnavailable
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store


async def timed_ping(store: Store) -> tuple[float, bool]:
    started = time.monotonic()
    try:
        await store.ping()
        return time.monotonic() - started, True
    except StoreUnavailable:
        return time.monotonic() - started, False


async def test_a_frozen_redis_fails_calls_fast_and_they_resume(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    store = Store(connect("127.0.0.1", server.port, socket_timeout=5.0))
    try:
        assert (await timed_ping(store))[1]
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            # the calls waiting when Redis froze: failed together once the probe gets no answer
            caught = await asyncio.gather(*(timed_ping(store) for _ in range(8)))
            assert all(not ok and seconds < 1.5 for seconds, ok in caught), caught
            # every later call fails at once
            later = [await timed_ping(store) for _ in range(20)]
            assert all(not ok and seconds < 0.05 for seconds, ok in later), later
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        resumed = time.monotonic()
        while not (await timed_ping(store))[1]:
            assert time.monotonic() - resumed < 1.0, "calls did not go through within 1 s of Redis resuming"
            await asyncio.sleep(0.01)
    finally:
        await store.close()
        server.stop()


async def test_a_late_reply_while_redis_answers_others_is_not_an_outage(tmp_path: Path) -> None:
    """A reply later than the stall threshold while Redis still answers the probe (a blocking pop) is
    left to come: only a Redis that answers no one closes the gate."""
    seconds = 0.8
    server = start_redis(tmp_path / "redis")
    store = Store(connect("127.0.0.1", server.port, socket_timeout=5.0))
    try:
        started = time.monotonic()
        # BLPOP waits without keeping Redis busy: the probe's PING is answered, so the gate stays open
        reply = await store.client.blpop(["nothing-here"], timeout=seconds)  # type: ignore[misc]
        assert reply is None and time.monotonic() - started >= seconds
        assert (await timed_ping(store))[1]
    finally:
        await store.close()
        server.stop()

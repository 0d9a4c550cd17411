"""Fails Redis calls in milliseconds while Redis hangs, instead of each waiting out the socket timeout.

A Redis that is frozen (SIGSTOP, a stalled VM, a long fork) still accepts connections, so every call
would wait ``socket_timeout`` (5 s) for its reply and clients would pile up behind it. Instead a
watchdog notices a reply overdue by STALL_SECONDS and probes Redis on a connection of its own; if the
probe gets no answer either, the gate closes: the calls already waiting are failed at once, and new
ones fail before they are sent. The probe keeps asking every PROBE_PAUSE seconds and opens the gate
as soon as Redis answers, so service resumes within a fraction of a second of Redis's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

log = logging.getLogger("vmpooler.store")

#: a reply this late (seconds) makes the watchdog probe; a probe unanswered this long closes the gate.
#: Together under a second, so even the calls caught waiting when Redis froze end within one (the chaos
#: test holds replies during a freeze to p99 <= 1 s; a longer probe was tried and broke that under load)
STALL_SECONDS = 0.4
PROBE_TIMEOUT = 0.3
#: how often the watchdog looks while calls wait, and the probe retries while the gate is closed
WATCH_SECONDS = 0.1
PROBE_PAUSE = 0.1
#: while the gate is closed a probe's PING may wait this long: a frozen Redis answers it the moment it
#: resumes, sooner than a new probe would (a stopped one refuses the connection at once instead)
REVIVAL_TIMEOUT = 2.0
FAIL_FAST = "Redis is not answering (calls fail at once until a probe gets a reply)"


class RedisGate:
    """Shared by every connection of one pool; the connections report each wait for a reply (``waits``)."""

    def __init__(self, probe_connection: Callable[[], aioredis.connection.AbstractConnection]) -> None:
        self.open = True
        self._probe_connection = probe_connection
        #: the tasks waiting for a reply now, and since when (time.monotonic)
        self.waits: dict[asyncio.Task[Any], float] = {}
        #: the waiting tasks the gate cancelled when it closed: their CancelledError is a timeout
        self.aborted: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._watchdog: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stop the watchdog (the pool is being closed)."""
        if self._watchdog is not None and not self._watchdog.done():
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        self._watchdog = None

    def check(self) -> None:
        """Raise at once while the gate is closed (before a connection is taken or a command sent)."""
        if not self.open:
            raise redis_errors.ConnectionError(FAIL_FAST)

    def watch(self) -> None:
        """Start the watchdog if it is not running (a wait for a reply has begun)."""
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="redis-watchdog")

    async def _watch(self) -> None:
        """Runs while replies are awaited or the gate is closed; gone otherwise (idle costs nothing)."""
        try:
            while self.waits or not self.open:
                if self.open:
                    await asyncio.sleep(WATCH_SECONDS)
                    oldest = min(self.waits.values(), default=None)
                    stalled = oldest is not None and time.monotonic() - oldest > STALL_SECONDS
                    if stalled and not await self._answers(PROBE_TIMEOUT):
                        self._close()
                elif await self._answers(REVIVAL_TIMEOUT):
                    self.open = True
                    log.warning("Redis answers again: calls go through")
                else:
                    await asyncio.sleep(PROBE_PAUSE)
        finally:
            self._watchdog = None

    def _close(self) -> None:
        self.open = False
        log.warning("Redis did not answer within %.1fs: failing calls at once until it does", STALL_SECONDS)
        for task in list(self.waits):
            self.aborted.add(task)
            task.cancel()

    async def _answers(self, timeout: float) -> bool:
        """Does Redis reply to a PING on a fresh connection within ``timeout``? Any reply counts, an
        error too (NOAUTH, LOADING): the server is running."""
        connection = self._probe_connection()
        try:
            async with asyncio.timeout(timeout):
                await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_command("PING")
                await connection.read_response()
            return True
        except (redis_errors.ResponseError, redis_errors.AuthenticationError):
            return True
        except (TimeoutError, redis_errors.RedisError, OSError):
            return False
        finally:
            try:
                await connection.disconnect(nowait=True)
            except (redis_errors.RedisError, OSError):
                pass


class _Gated:
    """Mixed into a connection class: each wait for a reply is reported to the pool's gate, which cancels it
    (raised as a redis TimeoutError) when it closes. Cheap on purpose: it runs for every command of a pipeline.

    Reads with an explicit timeout (pub/sub waiting for a message) are not replies that can be late."""

    gate: RedisGate | None = None

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, **kwargs: Any) -> Any:
        gate = self.gate
        task = asyncio.current_task() if gate is not None and timeout is None else None
        if gate is None or task is None:
            return await super().read_response(disable_decoding, timeout, **kwargs)  # type: ignore[misc]
        if not gate.open:
            raise redis_errors.TimeoutError(FAIL_FAST)
        gate.waits[task] = time.monotonic()
        gate.watch()
        try:
            return await super().read_response(disable_decoding, timeout, **kwargs)  # type: ignore[misc]
        except asyncio.CancelledError:
            if task not in gate.aborted:
                raise
            gate.aborted.discard(task)
            task.uncancel()
            raise redis_errors.TimeoutError(FAIL_FAST) from None
        finally:
            gate.waits.pop(task, None)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self.gate is not None:
            self.gate.check()
        await super().send_packed_command(command, check_health)  # type: ignore[misc]


class GatedConnection(_Gated, aioredis.Connection):
    pass


class GatedSSLConnection(_Gated, aioredis.SSLConnection):
    pass


class GatedUnixConnection(_Gated, aioredis.UnixDomainSocketConnection):
    pass


class GatedPool(aioredis.BlockingConnectionPool):
    """A blocking pool whose connections share one gate; while it is closed no connection is handed out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = RedisGate(self._probe_connection)

    def make_connection(self) -> Any:
        connection = super().make_connection()  # type: ignore[no-untyped-call]
        connection.gate = self.gate
        return connection

    def _probe_connection(self) -> aioredis.connection.AbstractConnection:
        connection = super().make_connection()  # type: ignore[no-untyped-call]
        connection.gate = None  # the probe must reach Redis while the gate is closed
        return connection  # type: ignore[no-any-return]

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await self.gate.close()
        await super().disconnect(inuse_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.gate.check()
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

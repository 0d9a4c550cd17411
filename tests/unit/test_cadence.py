"""The one cadence every manager loop runs on: a pass's bug is logged, counted and backed off, never fatal;
Redis being down is a warning; ``stop`` ends every loop at once, whatever it is waiting for."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.support.waiting import until
from vmpooler.errors import StoreUnavailable
from vmpooler.manager.cadence import BACKOFF_MAX, CRASH_CAUSE, backoff, every
from vmpooler.metrics.base import Metrics


class CountingSink(Metrics):
    """A metrics sink that keeps the error counts it is given."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def error(self, cause: str, pool: str) -> None:
        self.errors.append((cause, pool))


class FlakyPass:
    """A pass that raises ``error`` on its first ``failures`` calls, then succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


async def test_a_pass_that_raises_a_bug_is_logged_counted_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, stop = CountingSink(), asyncio.Event()
    flaky = FlakyPass(3, RuntimeError("a bug in one pass"))
    loop = asyncio.create_task(every(0.01, stop, flaky, name="demo loop", label="demo", metrics=sink, ceiling=0.04))
    with caplog.at_level(logging.WARNING, logger="vmpooler.manager"):

        async def passes() -> int:
            return flaky.calls

        await until(passes, "passes after the three that crashed", done=lambda n: n >= 6, timeout=10)
    assert not loop.done(), "a pass's bug ended the loop"
    assert sink.errors == [(CRASH_CAUSE, "demo")] * 3
    crashes = [r for r in caplog.records if "pass crashed" in r.getMessage()]
    assert [r.getMessage().split(";")[0] for r in crashes] == [
        f"demo loop: pass crashed ({n} in a row)" for n in (1, 2, 3)
    ]
    assert all(r.exc_info and "a bug in one pass" in str(r.exc_info[1]) for r in crashes), "no traceback logged"
    stop.set()
    await asyncio.wait_for(loop, 2)


async def test_redis_unavailable_is_a_warning_and_not_counted_as_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    sink, stop = CountingSink(), asyncio.Event()
    flaky = FlakyPass(2, StoreUnavailable("connection refused"))
    loop = asyncio.create_task(every(0.01, stop, flaky, name="tasks", metrics=sink))
    with caplog.at_level(logging.WARNING, logger="vmpooler.manager"):

        async def passes() -> int:
            return flaky.calls

        await until(passes, "passes after Redis came back", done=lambda n: n >= 4, timeout=10)
    stop.set()
    await asyncio.wait_for(loop, 2)
    assert sink.errors == []
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["tasks: Redis unavailable, pausing: connection refused"] * 2


def test_backoff_doubles_from_the_interval_up_to_the_ceiling() -> None:
    assert [backoff(1.0, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(5.0, 4) == 40 and backoff(5.0, 5) == BACKOFF_MAX
    assert backoff(120.0, 3) == 120, "a loop whose interval is past the ceiling keeps its interval"
    assert backoff(0.0, 1) == 0.5, "a loop with no interval still waits between crashes"


async def test_stop_ends_every_loop_at_once_whatever_it_waits_for() -> None:
    """One loop before its first pass, one between passes, one backing off after a crash: all an hour away."""
    sink, stop = CountingSink(), asyncio.Event()
    crashing = FlakyPass(1, RuntimeError("bug"))
    loops = [
        asyncio.create_task(
            every(3600, stop, FlakyPass(0, RuntimeError()), name="late", metrics=sink, first_after=3600)
        ),
        asyncio.create_task(every(3600, stop, FlakyPass(0, RuntimeError()), name="idle", metrics=sink)),
        asyncio.create_task(every(3600, stop, crashing, name="backing-off", metrics=sink, ceiling=3600)),
    ]

    async def crashed() -> int:
        return len(sink.errors)

    await until(crashed, "the crash that starts the backoff", timeout=5)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(asyncio.gather(*loops), 5)
    assert time.monotonic() - started < 1.0
    assert crashing.calls == 1, "the loop did not wait out its backoff"

"""The one way tests wait: poll a condition until it holds; a timeout says what was awaited and what was seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: nothing is retried unless the caller names it: an unexpected error is a failure now, not a timeout later
NO_ERRORS: tuple[type[BaseException], ...] = ()


@dataclass(frozen=True)
class Waited(Generic[T]):
    """What the wait ended with: the last value (truthy unless ``done`` says otherwise), time taken, checks made."""

    value: T
    seconds: float
    checks: int


class _Watch(Generic[T]):
    """One wait's bookkeeping: the deadline, the checks so far and the last value or retried error seen."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what, self.timeout = what, timeout
        self.started = time.monotonic()
        self.checks = 0
        self.last: object = "nothing (no check ran)"

    def expired(self) -> bool:
        return time.monotonic() - self.started >= self.timeout

    def saw(self, value: object) -> None:
        self.checks += 1
        self.last = value

    def done(self, value: T) -> Waited[T]:
        return Waited(value, time.monotonic() - self.started, self.checks)

    def failure(self) -> AssertionError:
        return AssertionError(
            f"timed out after {self.timeout:g}s waiting for {self.what} ({self.checks} checks); "
            f"last seen: {self.last!r}"
        )


async def until(
    check: Callable[[], Awaitable[T]],
    what: str,
    *,
    done: Callable[[T], bool] = bool,
    timeout: float = 20.0,
    pause: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = NO_ERRORS,
) -> Waited[T]:
    """Await ``check()`` every ``pause`` seconds until ``done(value)``; only errors in ``retry_on`` mean "not yet"."""
    watch: _Watch[T] = _Watch(what, timeout)
    while True:
        try:
            value = await check()
        except retry_on as exc:
            watch.saw(exc)
        else:
            watch.saw(value)
            if done(value):
                return watch.done(value)
        if watch.expired():
            raise watch.failure()
        await asyncio.sleep(pause)


def until_sync(
    check: Callable[[], T],
    what: str,
    *,
    done: Callable[[T], bool] = bool,
    timeout: float = 20.0,
    pause: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = NO_ERRORS,
) -> Waited[T]:
    """``until`` for code without an event loop (a subprocess, an HTTP client)."""
    watch: _Watch[T] = _Watch(what, timeout)
    while True:
        try:
            value = check()
        except retry_on as exc:
            watch.saw(exc)
        else:
            watch.saw(value)
            if done(value):
                return watch.done(value)
        if watch.expired():
            raise watch.failure()
        time.sleep(pause)

"""One cadence for every background loop: run a pass, wait or stop, and outlive a pass's bug.

The supervision policy, the same for every loop:

* Redis unavailable (:class:`~vmpooler.errors.StoreError`) is expected weather, not a bug: one warning
  line, then the loop waits its usual interval and tries again (the pool loops pause this way while
  Redis restarts). A pass that wants quieter handling catches it itself.
* Any other exception is a bug in that one loop: it is logged with its traceback and the loop's name,
  counted (``Metrics.error("loop_crashed", <loop>)``), and the loop backs off exponentially from its
  interval up to :data:`BACKOFF_MAX` seconds, then carries on. It never ends the loop, and so never
  the manager.
* ``stop`` ends the loop at the next wait, at once (the waits watch it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from vmpooler.errors import StoreError
from vmpooler.metrics.base import Metrics

log = logging.getLogger("vmpooler.manager")

#: a loop whose passes keep failing waits at most this long between tries (or its own interval, if longer)
BACKOFF_MAX = 60.0
#: the cause under which a crashed pass is counted (``Metrics.error``)
CRASH_CAUSE = "loop_crashed"

Pass = Callable[[], Awaitable[object]]
#: waits ``seconds`` or until ``stop`` is set, whichever comes first; may return earlier (a wake-up)
Sleep = Callable[[float, asyncio.Event], Awaitable[None]]


async def wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    return stop.is_set()


async def _plain_sleep(seconds: float, stop: asyncio.Event) -> None:
    await wait(stop, seconds)


def backoff(interval: float, failures: int, ceiling: float = BACKOFF_MAX) -> float:
    """Seconds to wait after ``failures`` crashed passes in a row: the interval doubled per failure,
    capped at ``ceiling`` (a loop whose own interval is longer keeps its interval)."""
    first = max(interval, 0.5)
    return min(first * 2.0 ** (failures - 1), max(ceiling, interval))


async def every(
    interval: float | Callable[[], float],
    stop: asyncio.Event,
    run_pass: Pass,
    *,
    name: str,
    metrics: Metrics,
    sleep: Sleep = _plain_sleep,
    label: str = "",
    first_after: float = 0.0,
    ceiling: float = BACKOFF_MAX,
) -> None:
    """Run ``run_pass`` then ``sleep`` for ``interval`` seconds (a callable is asked after each pass,
    for loops whose pace adapts), until ``stop`` is set; ``first_after`` delays the first pass.

    ``name`` says which loop in the log; ``label`` (default: ``name``) is what the crash count is
    recorded under (a pool loop gives its pool's name).
    """
    failures = 0
    if first_after > 0 and await wait(stop, first_after):
        return
    while not stop.is_set():
        try:
            try:
                await run_pass()
            except StoreError as exc:
                log.warning("%s: Redis unavailable, pausing: %s", name, exc)
            failures = 0
            if stop.is_set():
                return
            await sleep(interval() if callable(interval) else interval, stop)
        except Exception:
            failures += 1
            delay = backoff(_interval_or_zero(interval), failures, ceiling)
            metrics.error(CRASH_CAUSE, label or name)
            log.exception("%s: pass crashed (%d in a row); next try in %.1fs", name, failures, delay)
            await wait(stop, delay)


def _interval_or_zero(interval: float | Callable[[], float]) -> float:
    if not callable(interval):
        return interval
    try:
        return interval()
    except Exception:  # the pace itself is what broke: back off from the shortest wait
        return 0.0


async def supervised(name: str, work: Awaitable[object], metrics: Metrics) -> None:
    """Run one-shot work beside the loops: a bug in it is logged and counted, never raised, so a
    ``gather`` over the manager's tasks is not ended by it."""
    try:
        await work
    except StoreError as exc:
        log.warning("%s: Redis unavailable: %s", name, exc)
    except Exception:
        metrics.error(CRASH_CAUSE, name)
        log.exception("%s: crashed", name)

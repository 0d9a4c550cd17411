"""The circuit breaker's rules: when it opens, how long it waits, when it lets a probe through."""

from __future__ import annotations

from vmpooler.manager.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kw: object) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, base_backoff=30, max_backoff=100, clock=clock, **kw)  # type: ignore[arg-type]


def test_opens_after_threshold_consecutive_failures() -> None:
    b = breaker(Clock())
    assert not b.failed("boom") and not b.failed("boom")
    assert b.allow_clone()
    assert b.failed("boom")
    assert b.state is BreakerState.OPEN and b.degraded and b.problem == "boom"
    assert not b.allow_clone()


def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    b.failed("a")
    b.failed("b")
    assert not b.succeeded()  # it was closed: nothing recovered
    assert not b.failed("c")
    assert b.state is BreakerState.CLOSED


def test_a_permanent_failure_opens_at_once() -> None:
    b = breaker(Clock())
    assert b.failed("template not found", permanent=True)
    assert not b.allow_clone()


def test_one_probe_after_the_backoff_then_doubling_up_to_the_maximum() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failed("x", permanent=True)
    clock.now += 29.9
    assert not b.allow_clone()
    clock.now += 0.2
    assert b.allow_clone()  # the probe
    assert b.state is BreakerState.PROBING
    assert not b.allow_clone()  # only one
    assert b.failed("still broken")
    assert b.backoff == 60
    clock.now += 60.1
    assert b.allow_clone()
    b.failed("still broken")
    assert b.backoff == 100  # capped
    clock.now += 100.1
    assert b.allow_clone()
    assert b.succeeded()  # recovered
    assert b.state is BreakerState.CLOSED and not b.degraded and b.allow_clone()


def test_failures_reported_while_open_do_not_extend_the_backoff() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failed("x", permanent=True)
    for _ in range(5):  # clones started before it opened, failing one after another
        assert not b.failed("x")
    assert b.backoff == 30


def test_a_probe_that_never_reports_back_is_followed_by_another() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failed("x", permanent=True)
    clock.now += 31
    assert b.allow_clone()
    clock.now += 29
    assert not b.allow_clone()
    clock.now += 2
    assert b.allow_clone()


def test_disabled_never_opens() -> None:
    b = breaker(Clock(), enabled=False)
    for _ in range(10):
        assert not b.failed("x", permanent=True)
    assert b.allow_clone() and not b.degraded

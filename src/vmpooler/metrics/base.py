"""What the service reports, as events; each sink (Prometheus, StatsD, Graphite) names them its own way."""

from __future__ import annotations


class Metrics:
    """The events vmpooler reports. This base records nothing; sinks override what they publish.

    Every method is cheap and never raises: a metrics outage must not fail a checkout.
    """

    def checkout(self, pool: str, result: str, count: int = 1) -> None:
        """``result`` is success, empty (not enough ready VMs) or invalid (unknown pool)."""

    def returned(self, result: str) -> None:
        """A DELETE /vm: success or failed."""

    def checkout_waited(self, pool: str, seconds: float, count: int = 1) -> None:
        """``count`` VMs of ``pool`` were handed out ``seconds`` after they were asked for (0: ready)."""

    def cloned(self, pool: str, seconds: float) -> None:
        """A clone finished (the VM exists, not yet booted)."""

    def became_ready(self, pool: str, seconds: float) -> None:
        """A VM booted and joined the ready set, ``seconds`` after its clone began."""

    def destroyed(self, pool: str, seconds: float) -> None:
        """A VM was destroyed."""

    def error(self, cause: str, pool: str) -> None:
        """A VM failed: clone_failed, timeout, ready_check_failed, destroy_failed, interrupted..."""

    def levels(self, pool: str, ready: int, running: int, pending: int, size: int) -> None:
        """A pool's current counts."""

    def manager_pass(self, pool: str, seconds: float) -> None:
        """One reconcile pass over a pool took ``seconds``."""

    def degraded(self, pool: str, degraded: bool) -> None:
        """The manager cannot fill the pool now (circuit breaker open, provider unreachable), or can again."""

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        """An API request, by route template (``/api/v3/vm/{hostname}``), not by raw path."""

    def usage(self, user: str, action: str, pool: str) -> None:
        """Per-user accounting (``usage_stats``): action is allocate or destroy."""


class Fanout(Metrics):
    """Sends every event to several sinks (the original could only use one)."""

    def __init__(self, sinks: list[Metrics]) -> None:
        self.sinks = sinks

    def checkout(self, pool: str, result: str, count: int = 1) -> None:
        for sink in self.sinks:
            sink.checkout(pool, result, count)

    def returned(self, result: str) -> None:
        for sink in self.sinks:
            sink.returned(result)

    def checkout_waited(self, pool: str, seconds: float, count: int = 1) -> None:
        for sink in self.sinks:
            sink.checkout_waited(pool, seconds, count)

    def cloned(self, pool: str, seconds: float) -> None:
        for sink in self.sinks:
            sink.cloned(pool, seconds)

    def became_ready(self, pool: str, seconds: float) -> None:
        for sink in self.sinks:
            sink.became_ready(pool, seconds)

    def destroyed(self, pool: str, seconds: float) -> None:
        for sink in self.sinks:
            sink.destroyed(pool, seconds)

    def error(self, cause: str, pool: str) -> None:
        for sink in self.sinks:
            sink.error(cause, pool)

    def levels(self, pool: str, ready: int, running: int, pending: int, size: int) -> None:
        for sink in self.sinks:
            sink.levels(pool, ready, running, pending, size)

    def manager_pass(self, pool: str, seconds: float) -> None:
        for sink in self.sinks:
            sink.manager_pass(pool, seconds)

    def degraded(self, pool: str, degraded: bool) -> None:
        for sink in self.sinks:
            sink.degraded(pool, degraded)

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        for sink in self.sinks:
            sink.http(method, route, status, seconds)

    def usage(self, user: str, action: str, pool: str) -> None:
        for sink in self.sinks:
            sink.usage(user, action, pool)

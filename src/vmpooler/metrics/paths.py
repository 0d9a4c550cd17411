"""Dotted metric paths with the original vmpooler's names, shared by the StatsD and Graphite sinks."""

from __future__ import annotations

import re
from abc import abstractmethod

from vmpooler.metrics.base import Metrics

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def segment(value: str) -> str:
    """One path segment: dots and odd characters would split or break the path."""
    return _UNSAFE.sub("_", value) or "_"


class PathMetrics(Metrics):
    """Maps events to ``<prefix>.<path>`` counters, gauges and timings, as the original names them."""

    def __init__(self, prefix: str = "vmpooler") -> None:
        self.prefix = prefix.rstrip(".")

    @abstractmethod
    def send(self, kind: str, path: str, value: float) -> None:
        """``kind`` is 'counter', 'gauge' or 'timing' (milliseconds)."""

    def _emit(self, kind: str, path: str, value: float) -> None:
        try:
            self.send(kind, f"{self.prefix}.{path}" if self.prefix else path, value)
        except OSError:
            pass  # metrics are best effort: never fail the caller

    def checkout(self, pool: str, result: str, count: int = 1) -> None:
        self._emit("counter", f"checkout.{segment(result)}.{segment(pool)}", count)

    def returned(self, result: str) -> None:
        self._emit("counter", f"delete.{segment(result)}", 1)

    def cloned(self, pool: str, seconds: float) -> None:
        self._emit("gauge", f"vmpooler_clone.{segment(pool)}", round(seconds, 2))

    def became_ready(self, pool: str, seconds: float) -> None:
        self._emit("timing", f"time_to_ready_state.{segment(pool)}", round(seconds * 1000))

    def destroyed(self, pool: str, seconds: float) -> None:
        self._emit("gauge", f"vmpooler_destroy.{segment(pool)}", round(seconds, 2))

    def error(self, cause: str, pool: str) -> None:
        self._emit("counter", f"vmpooler_errors.{segment(cause)}.{segment(pool)}", 1)

    def levels(self, pool: str, ready: int, running: int, pending: int, size: int) -> None:
        self._emit("gauge", f"ready.{segment(pool)}", ready)
        self._emit("gauge", f"running.{segment(pool)}", running)
        self._emit("gauge", f"pending.{segment(pool)}", pending)

    def manager_pass(self, pool: str, seconds: float) -> None:
        self._emit("gauge", f"vmpooler_performance.check_pool.{segment(pool)}", round(seconds * 1000))

    def degraded(self, pool: str, degraded: bool) -> None:
        self._emit("gauge", f"degraded.{segment(pool)}", 1 if degraded else 0)

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        name = segment(route.strip("/").replace("/", "_").replace("{", "").replace("}", "")) or "root"
        self._emit("counter", f"http_requests_vm_total.{segment(method.lower())}.{name}.{status}", 1)

    def usage(self, user: str, action: str, pool: str) -> None:
        self._emit("counter", f"user.{segment(user)}.{segment(action)}.{segment(pool)}", 1)

"""The original vmpooler's Prometheus metric names (``:prometheus: names: original``), for its dashboards and alerts.

The original (lib/vmpooler/metrics/promstats.rb) turns each dotted StatsD name into a family
``<prometheus_prefix>_<first part>[_<sub-metric>]`` with the rest as labels, every family carrying
``vmpooler_instance=<:prometheus: prefix>``; its HTTP middleware adds ``<prometheus_prefix>_http_*``.
``ORIGINAL_NAMES`` is the mapping docs/operations.md (Metrics) lists. Its counters are exposed here as gauges
under the same names: the Python client would append ``_total`` to a counter's name, and the name is
what dashboards and alerts match (``rate()`` reads either type).
"""

from __future__ import annotations

import re
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

from vmpooler.metrics.prometheus import FAST_BUCKETS, PrometheusMetrics
from vmpooler.metrics.sections import PrometheusSection

__all__ = ["ORIGINAL_NAMES", "OriginalNamedPrometheus", "prometheus_sink"]

# the original's buckets (promstats.rb POOLER_CLONE_TIME_BUCKETS, POOLER_READY_TIME_BUCKETS)
CLONE_BUCKETS: Final = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 180.0, 240.0, 300.0, 600.0, float("inf"))
READY_BUCKETS: Final = (30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 500.0, 800.0, 1200.0, 1600.0, float("inf"))
_CHECKOUT_RESULTS: Final = ("success", "empty", "invalid", "nonresponsive")
_DELETE_RESULTS: Final = ("success", "failed")
# collector_middleware.rb strip_hostnames_from_path: one series per route, not per VM
_PATH_REWRITES: Final = [
    (re.compile(r"/(vm|ondemandvm|token|lib|img)/.+$"), r"/\1"),
]

#: our family (prefix ``vmpooler``) -> the original's family and labels, as docs/operations.md shows them
ORIGINAL_NAMES: Final[dict[str, str]] = {
    "vmpooler_checkouts_total{pool,result}": "vmpooler_checkout_<result>{poolname} (result: success, empty, invalid)",
    "vmpooler_returns_total{result}": "vmpooler_delete_<result> (result: success, failed)",
    "vmpooler_clone_seconds{pool}": "vmpooler_clone{poolname} (histogram); the last one's seconds: "
    "vmpooler_vmpooler_clone{poolname}",
    "vmpooler_boot_seconds{pool}": "vmpooler_time_to_ready_state{poolname} (histogram)",
    "vmpooler_destroys_total{pool}": "vmpooler_destroy{poolname} (histogram of seconds); the last one's seconds: "
    "vmpooler_vmpooler_destroy{poolname}",
    "vmpooler_errors_total{cause,pool}": 'vmpooler_vmpooler_errors{metric_path="<cause>.<pool>"} '
    "(markedasfailed also as vmpooler_errors_markedasfailed{template_name})",
    'vmpooler_vms{pool,state="ready"}': "vmpooler_ready{poolname}",
    'vmpooler_vms{pool,state="running"}': "vmpooler_running{poolname}",
    "vmpooler_usage_total{user,action,pool}": "vmpooler_user{user,operation,poolname}",
    "vmpooler_http_requests_total{method,route,status}": "vmpooler_http_requests_total{code,method,path}",
    "vmpooler_http_request_seconds{method,route}": "vmpooler_http_request_duration_seconds{method,path}",
}


def prometheus_sink(section: PrometheusSection) -> PrometheusMetrics:
    """The Prometheus sink the ``:prometheus:`` section asks for."""
    if section.names == "original":
        return OriginalNamedPrometheus(section)
    return PrometheusMetrics(prefix=section.prometheus_prefix)


class OriginalNamedPrometheus(PrometheusMetrics):
    """Exposes every event under the original's names only (ours are kept, unexposed, for the code that reads them)."""

    def __init__(self, section: PrometheusSection) -> None:
        # our families go to a registry nothing scrapes (both sets in one would collide on
        # vmpooler_http_requests_total); ``registry`` is what the endpoint serves
        super().__init__(registry=CollectorRegistry(), prefix=section.prometheus_prefix)
        exposed = CollectorRegistry()
        self.registry = exposed
        self.instance = section.prefix
        p, r = section.prometheus_prefix, exposed

        def counter(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(f"{p}_{name}", doc, [*labels, "vmpooler_instance"], registry=r, multiprocess_mode="sum")

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(f"{p}_{name}", doc, ["poolname", "vmpooler_instance"], buckets=buckets, registry=r)

        def last_value(name: str, doc: str) -> Gauge:
            """A per-pool gauge holding the latest value reported (whichever process reported it)."""
            labels = ["poolname", "vmpooler_instance"]
            return Gauge(f"{p}_{name}", doc, labels, registry=r, multiprocess_mode="mostrecent")

        self.o_checkout = {
            result: counter(f"checkout_{result}", f"Pool checkout counts {result}", ["poolname"])
            for result in _CHECKOUT_RESULTS
        }
        self.o_delete = {
            result: counter(f"delete_{result}", f"Delete machine {result}", []) for result in _DELETE_RESULTS
        }
        self.o_clone = histogram("clone", "vmpooler time taken to clone machine", CLONE_BUCKETS)
        self.o_destroy = histogram("destroy", "vmpooler time taken to destroy machine", CLONE_BUCKETS)
        self.o_ready_time = histogram(
            "time_to_ready_state", "Time taken for machine to reach ready state", READY_BUCKETS
        )
        self.o_errors = counter("vmpooler_errors", "vmpooler error counters", ["metric_path"])
        # what the original before 3.8 counted a timed-out VM under (it still registers the family)
        self.o_marked_failed = counter(
            "errors_markedasfailed",
            "Count of errors for pool timeout waiting for instance to initialise",
            ["template_name"],
        )
        self.o_user = counter(
            "user", "Pool instances and the operation performed by a user", ["user", "operation", "poolname"]
        )

        # the last clone's and destroy's seconds (whole), as the original's vmpooler_clone/vmpooler_destroy gauges
        self.o_last_clone = last_value("vmpooler_clone", "vmpooler clone metrics")
        self.o_last_destroy = last_value("vmpooler_destroy", "vmpooler destroy metrics")
        self.o_ready = last_value("ready", "vmpooler number of machines in ready State")
        self.o_running = last_value("running", "vmpooler number of machines running")
        # the original's HTTP middleware: no vmpooler_instance label
        self.o_requests = Gauge(
            f"{p}_http_requests_total", "The total number of HTTP requests handled by the Rack application.",
            ["code", "method", "path"], registry=r, multiprocess_mode="sum",
        )  # fmt: skip
        self.o_durations = Histogram(
            f"{p}_http_request_duration_seconds", "The HTTP response duration of the Rack application.",
            ["method", "path"], buckets=FAST_BUCKETS, registry=r,
        )  # fmt: skip

    def checkout(self, pool: str, result: str, count: int = 1) -> None:
        super().checkout(pool, result, count)
        if result in self.o_checkout:
            self.o_checkout[result].labels(pool, self.instance).inc(count)

    def returned(self, result: str) -> None:
        super().returned(result)
        if result in self.o_delete:
            self.o_delete[result].labels(self.instance).inc()

    def cloned(self, pool: str, seconds: float) -> None:
        super().cloned(pool, seconds)
        self.o_clone.labels(pool, self.instance).observe(seconds)
        self.o_last_clone.labels(pool, self.instance).set(int(seconds))

    def became_ready(self, pool: str, seconds: float) -> None:
        super().became_ready(pool, seconds)
        self.o_ready_time.labels(pool, self.instance).observe(seconds)

    def destroyed(self, pool: str, seconds: float) -> None:
        super().destroyed(pool, seconds)
        self.o_destroy.labels(pool, self.instance).observe(seconds)
        self.o_last_destroy.labels(pool, self.instance).set(int(seconds))

    def error(self, cause: str, pool: str) -> None:
        super().error(cause, pool)
        # our causes are the original's words (markedasfailed, permanently_failed) plus a few of our own
        self.o_errors.labels(f"{cause}.{pool}", self.instance).inc()
        if cause == "markedasfailed":
            self.o_marked_failed.labels(pool, self.instance).inc()

    def levels(self, pool: str, ready: int, running: int, pending: int, size: int) -> None:
        super().levels(pool, ready, running, pending, size)
        self.o_ready.labels(pool, self.instance).set(ready)
        self.o_running.labels(pool, self.instance).set(running)

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        super().http(method, route, status, seconds)
        path = route
        for pattern, replacement in _PATH_REWRITES:
            path = pattern.sub(replacement, path)
        self.o_requests.labels(str(status), method.lower(), path).inc()
        self.o_durations.labels(method.lower(), path).observe(seconds)

    def usage(self, user: str, action: str, pool: str) -> None:
        super().usage(user, action, pool)
        self.o_user.labels(user, action, pool, self.instance).inc()

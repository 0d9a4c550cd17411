"""Prometheus sink: ``vmpooler_*`` metric families in a registry the API exposes for scraping."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from vmpooler.metrics.base import Metrics

BOOT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, float("inf"))
#: a checkout's wait: 0 (served from ready) is a bucket of its own, then up to the longest wait allowed
WAIT_BUCKETS = (0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, float("inf"))
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))


class PrometheusMetrics(Metrics):
    """Families (``prefix`` defaults to ``vmpooler``, as the original's ``prometheus_prefix``):

    ``_checkouts_total{pool,result}``, ``_returns_total{result}``, ``_clone_seconds{pool}``,
    ``_boot_seconds{pool}`` (clone start to ready), ``_destroys_total{pool}``, ``_errors_total{cause,pool}``,
    ``_vms{pool,state}`` (ready/running/pending), ``_pool_size{pool}``, ``_manager_pass_seconds{pool}``,
    ``_http_requests_total{method,route,status}``, ``_http_request_seconds{method,route}``,
    ``_usage_total{user,action,pool}``, ``_checkout_wait_seconds{pool}`` (0 when served from ready).
    """

    def __init__(self, registry: CollectorRegistry | None = None, prefix: str = "vmpooler") -> None:
        # the *_created series double the exposition and nothing reads them (process-wide switch)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry or CollectorRegistry()
        r, p = self.registry, prefix
        self.checkouts = Counter(f"{p}_checkouts", "VM checkouts by result", ["pool", "result"], registry=r)
        self.checkout_wait = Histogram(
            f"{p}_checkout_wait_seconds",
            "Seconds each checked-out VM was waited for (0: served from ready)",
            ["pool"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.returns = Counter(f"{p}_returns", "VMs returned through DELETE /vm", ["result"], registry=r)
        self.clone_seconds = Histogram(
            f"{p}_clone_seconds", "Clone duration", ["pool"], buckets=BOOT_BUCKETS, registry=r
        )
        self.boot_seconds = Histogram(
            f"{p}_boot_seconds", "Seconds from clone start to ready", ["pool"], buckets=BOOT_BUCKETS, registry=r
        )
        self.destroys = Counter(f"{p}_destroys", "VMs destroyed", ["pool"], registry=r)
        self.errors = Counter(f"{p}_errors", "VM failures by cause", ["cause", "pool"], registry=r)
        # with several processes (metrics/multiprocess.py) a level is the latest any live process set
        level: Literal["livemostrecent"] = "livemostrecent"
        self.vms = Gauge(f"{p}_vms", "VMs per pool and state", ["pool", "state"], registry=r, multiprocess_mode=level)
        self.size = Gauge(
            f"{p}_pool_size", "Configured (or overridden) pool size", ["pool"], registry=r, multiprocess_mode=level
        )
        self.pool_degraded = Gauge(
            f"{p}_pool_degraded",
            "1 while the manager cannot fill the pool (see /status)",
            ["pool"],
            registry=r,
            multiprocess_mode=level,
        )
        self.passes = Histogram(
            f"{p}_manager_pass_seconds", "Duration of one reconcile pass", ["pool"], buckets=FAST_BUCKETS, registry=r
        )
        self.requests = Counter(f"{p}_http_requests", "API requests", ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram(
            f"{p}_http_request_seconds", "API request duration", ["method", "route"], buckets=FAST_BUCKETS, registry=r
        )
        self.usage_total = Counter(f"{p}_usage", "Per-user accounting", ["user", "action", "pool"], registry=r)
        #: (method, route, status) -> the request counter's and the duration histogram's children
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def checkout(self, pool: str, result: str, count: int = 1) -> None:
        self.checkouts.labels(pool, result).inc(count)

    def returned(self, result: str) -> None:
        self.returns.labels(result).inc()

    def checkout_waited(self, pool: str, seconds: float, count: int = 1) -> None:
        for _ in range(count):
            self.checkout_wait.labels(pool).observe(seconds)

    def cloned(self, pool: str, seconds: float) -> None:
        self.clone_seconds.labels(pool).observe(seconds)

    def became_ready(self, pool: str, seconds: float) -> None:
        self.boot_seconds.labels(pool).observe(seconds)

    def destroyed(self, pool: str, seconds: float) -> None:
        self.destroys.labels(pool).inc()

    def error(self, cause: str, pool: str) -> None:
        self.errors.labels(cause, pool).inc()

    def levels(self, pool: str, ready: int, running: int, pending: int, size: int) -> None:
        self.vms.labels(pool, "ready").set(ready)
        self.vms.labels(pool, "running").set(running)
        self.vms.labels(pool, "pending").set(pending)
        self.size.labels(pool).set(size)

    def manager_pass(self, pool: str, seconds: float) -> None:
        self.passes.labels(pool).observe(seconds)

    def degraded(self, pool: str, degraded: bool) -> None:
        self.pool_degraded.labels(pool).set(1 if degraded else 0)

    def http(self, method: str, route: str, status: int, seconds: float) -> None:
        # every request: the labelled children are looked up once (``labels`` was 3 % of a request's CPU)
        children = self._http_children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.request_seconds.labels(method, route))
            self._http_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def usage(self, user: str, action: str, pool: str) -> None:
        self.usage_total.labels(user, action, pool).inc()

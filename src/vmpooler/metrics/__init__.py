"""Metrics: events reported to Prometheus (always), StatsD and Graphite (when configured), all at once."""

from __future__ import annotations

from vmpooler.config import Settings
from vmpooler.metrics.base import Fanout, Metrics
from vmpooler.metrics.graphite import GraphiteMetrics
from vmpooler.metrics.prometheus import PrometheusMetrics
from vmpooler.metrics.statsd import StatsdMetrics

__all__ = ["Fanout", "Metrics", "PrometheusMetrics", "build_metrics", "prometheus_of"]


def build_metrics(settings: Settings) -> Fanout:
    """Prometheus is always on (the API serves it at ``prometheus_endpoint``, default /prometheus);
    StatsD and Graphite are added when their sections name a server."""
    prom = settings.prometheus or {}
    sinks: list[Metrics] = [PrometheusMetrics(prefix=str(prom.get("prometheus_prefix") or "vmpooler"))]
    statsd = settings.statsd or {}
    if statsd.get("server"):
        sinks.append(
            StatsdMetrics(
                str(statsd["server"]), int(statsd.get("port") or 8125), str(statsd.get("prefix") or "vmpooler")
            )
        )
    graphite = settings.graphite or {}
    if graphite.get("server"):
        sinks.append(
            GraphiteMetrics(
                str(graphite["server"]), int(graphite.get("port") or 2003), str(graphite.get("prefix") or "vmpooler")
            )
        )
    return Fanout(sinks)


def prometheus_of(metrics: Metrics) -> PrometheusMetrics | None:
    if isinstance(metrics, PrometheusMetrics):
        return metrics
    if isinstance(metrics, Fanout):
        return next((s for s in metrics.sinks if isinstance(s, PrometheusMetrics)), None)
    return None

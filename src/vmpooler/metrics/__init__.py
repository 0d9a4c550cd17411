"""Metrics: events reported to Prometheus (always), StatsD and Graphite (when configured), all at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmpooler.metrics.base import Fanout, Metrics
from vmpooler.metrics.graphite import GraphiteMetrics
from vmpooler.metrics.prometheus import PrometheusMetrics
from vmpooler.metrics.prometheus_original import prometheus_sink
from vmpooler.metrics.sections import GraphiteSection, PrometheusSection, StatsdSection
from vmpooler.metrics.statsd import StatsdMetrics

if TYPE_CHECKING:  # the settings type these sections: vmpooler.config imports this package
    from vmpooler.config import Settings

__all__ = ["Fanout", "Metrics", "PrometheusMetrics", "build_metrics", "prometheus_of"]


def build_metrics(settings: Settings) -> Fanout:
    """Prometheus is always on (the API serves it at ``prometheus_endpoint``, default /prometheus);
    StatsD and Graphite are added when their sections name a server."""
    sinks: list[Metrics] = [prometheus_sink(settings.prometheus or PrometheusSection())]
    statsd = settings.statsd or StatsdSection()
    if statsd.server:
        sinks.append(StatsdMetrics(statsd.server, statsd.port, statsd.prefix))
    graphite = settings.graphite or GraphiteSection()
    if graphite.server:
        sinks.append(GraphiteMetrics(graphite.server, graphite.port, graphite.prefix))
    return Fanout(sinks)


def prometheus_of(metrics: Metrics) -> PrometheusMetrics | None:
    if isinstance(metrics, PrometheusMetrics):
        return metrics
    if isinstance(metrics, Fanout):
        return next((s for s in metrics.sinks if isinstance(s, PrometheusMetrics)), None)
    return None

"""Metrics: events reported to Prometheus (always), StatsD and Graphite (when configured), all at once."""

from __future__ import annotations

from vmpooler.config import Settings
from vmpooler.metrics.base import Fanout, Metrics
from vmpooler.metrics.graphite import GraphiteMetrics
from vmpooler.metrics.prometheus import PrometheusMetrics
from vmpooler.metrics.prometheus_original import prometheus_sink
from vmpooler.metrics.sections import GraphiteSection, PrometheusSection, StatsdSection
from vmpooler.metrics.statsd import StatsdMetrics

__all__ = ["Fanout", "Metrics", "PrometheusMetrics", "build_metrics", "prometheus_of"]


def build_metrics(settings: Settings) -> Fanout:
    """Prometheus is always on (the API serves it at ``prometheus_endpoint``, default /prometheus);
    StatsD and Graphite are added when their sections name a server."""
    # the sections were checked at start-up (vmpooler.validate), so validating here cannot fail
    sinks: list[Metrics] = [prometheus_sink(PrometheusSection.model_validate(settings.prometheus or {}))]
    statsd = StatsdSection.model_validate(settings.statsd or {})
    if statsd.server:
        sinks.append(StatsdMetrics(statsd.server, statsd.port, statsd.prefix))
    graphite = GraphiteSection.model_validate(settings.graphite or {})
    if graphite.server:
        sinks.append(GraphiteMetrics(graphite.server, graphite.port, graphite.prefix))
    return Fanout(sinks)


def prometheus_of(metrics: Metrics) -> PrometheusMetrics | None:
    if isinstance(metrics, PrometheusMetrics):
        return metrics
    if isinstance(metrics, Fanout):
        return next((s for s in metrics.sinks if isinstance(s, PrometheusMetrics)), None)
    return None

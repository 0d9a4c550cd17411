"""The metrics sections of the configuration (``:statsd:``, ``:graphite:``, ``:prometheus:``), validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GraphiteSection", "PrometheusSection", "StatsdSection"]


class StatsdSection(BaseModel):
    """``:statsd:``: metrics are sent only when ``server`` is set."""

    model_config = ConfigDict(extra="ignore")

    server: str | None = None
    port: int = Field(8125, ge=1, le=65535)
    prefix: str = "vmpooler"


class GraphiteSection(StatsdSection):
    """``:graphite:``: plaintext TCP, sent only when ``server`` is set."""

    port: int = Field(2003, ge=1, le=65535)


class PrometheusSection(BaseModel):
    """``:prometheus:``: always served here (the original served it only with this section).

    ``names: original`` exposes the original's metric names instead of ours (docs/metrics.md lists the
    mapping); ``prefix`` is then the original's ``vmpooler_instance`` label.
    """

    model_config = ConfigDict(extra="ignore")

    prefix: str = "vmpooler"
    prometheus_prefix: str = Field("vmpooler", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    prometheus_endpoint: str = Field("/prometheus", pattern=r"^/")
    names: Literal["ours", "original"] = "ours"

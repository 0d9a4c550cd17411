"""The metrics sections of the configuration (``:statsd:``, ``:graphite:``, ``:prometheus:``), validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GraphiteSection", "PrometheusSection", "StatsdSection"]


class StatsdSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    server: str | None = Field(None, description="Where to send; without it nothing is sent.")
    port: int = Field(8125, ge=1, le=65535, description="UDP port.")
    prefix: str = Field("vmpooler", description="Put in front of every metric path.")


class GraphiteSection(StatsdSection):
    port: int = Field(2003, ge=1, le=65535, description="TCP port (plaintext protocol).")


class PrometheusSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prefix: str = Field(
        "vmpooler", description="With `names: original`: the value of the `vmpooler_instance` label, as the original."
    )
    prometheus_prefix: str = Field(
        "vmpooler", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", description="The first word of every family's name."
    )
    prometheus_endpoint: str = Field("/prometheus", pattern=r"^/", description="The path the API serves them on.")
    names: Literal["ours", "original"] = Field(
        "ours",
        description="`original`: the original's family names and labels instead of ours, for its dashboards and "
        "alerts (the mapping is in Operations → Metrics).",
    )

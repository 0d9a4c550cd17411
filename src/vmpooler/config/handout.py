"""A pool's hand-out check (``handout_check``): which service on a VM must answer before it is handed out."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["HandoutCheck"]

Kind = Literal["tcp", "ssh", "http"]


class HandoutCheck(BaseModel):
    """Exactly one of ``tcp`` (a port that must accept), ``ssh`` (a port that must send an SSH banner) or
    ``http`` (a path on the VM, or a URL with ``{hostname}``, that must answer 2xx or 3xx)."""

    model_config = ConfigDict(extra="forbid")

    tcp: int | None = Field(None, ge=1, le=65535, description="A port on the VM that must accept a connection.")
    ssh: int | None = Field(None, ge=1, le=65535, description="A port on the VM that must send an SSH banner.")
    http: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="A path (`/health`, port 80) or a URL with `{hostname}` that must answer 2xx or 3xx.",
    )
    budget_ms: int = Field(300, ge=1, le=60_000, description="How long one check may take, milliseconds.")
    cache_s: float = Field(0, ge=0, le=86_400, description="A VM that passed this recently is not checked again.")
    max_failure_rate: float = Field(
        0.5, gt=0, le=1, description="Checks failing above this share (over `window_s`) open the pool's breaker."
    )
    min_checks: int = Field(10, ge=1, description="Checks in the window before the failure rate counts.")
    window_s: int = Field(600, ge=60, le=86_400, description="Seconds of checks the failure rate is taken over.")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        given = [kind for kind in ("tcp", "ssh", "http") if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"name exactly one of tcp, ssh or http (got {', '.join(given) or 'none'})")
        if self.http is not None and not (self.http.startswith("/") or self.http.startswith(("http://", "https://"))):
            raise ValueError("http must be a path starting with / or an http(s):// URL")
        return self

    @property
    def kind(self) -> Kind:
        return "tcp" if self.tcp is not None else "ssh" if self.ssh is not None else "http"

    def describe(self) -> str:
        return f"{self.kind} {self.tcp or self.ssh or self.http}"

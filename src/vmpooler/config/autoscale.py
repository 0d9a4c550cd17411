"""A pool's ``autoscale:`` section: the bounds and the wait target the manager sizes the pool by."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vmpooler.sizing import AutoscaleSpec

__all__ = ["AutoscaleSettings"]


class AutoscaleSettings(BaseModel):
    """With this section the pool's ready target follows demand (see docs/autoscale.md); ``size`` is
    then not used."""

    model_config = ConfigDict(extra="forbid")

    min: int = Field(0, ge=0, description="The fewest VMs kept ready (0: none while nobody checks out).")
    max: int = Field(ge=0, description="The most VMs kept ready, waiting checkouts included.")
    target_wait_p95_s: float = Field(
        1.0, ge=0, le=600, description="Seconds: 95 % of checkouts should wait no longer than this."
    )
    idle_budget_vm_hours_per_day: float | None = Field(
        None, ge=0, description="At most this many ready-and-unused VM-hours a day (none: no cap)."
    )

    def spec(self) -> AutoscaleSpec:
        return AutoscaleSpec(self.min, self.max, self.target_wait_p95_s, self.idle_budget_vm_hours_per_day)

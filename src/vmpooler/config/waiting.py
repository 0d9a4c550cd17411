"""The ``:priorities:`` and ``:quotas:`` sections: who shares a waiting queue with whom, and who may hold how much.

    :priorities:
      groups: {ci: [jenkins, gha-bot]}     # a group is one owner: its members share one fair share
      classes: {interactive: 4, batch: 1}  # class -> weight (an owner in no class weighs 1)
      members: {alice: interactive, ci: batch}   # user or group -> class
    :quotas:
      default: {running: 20}               # every owner not listed below
      owners:
        ci: {running: 50, pools: {centos-7: 10}}
        alice: {running: 5}

An owner is the group a token's user belongs to (the first listed that has them), else the user; a checkout
without a token belongs to the owner ``""``. Without these sections every owner weighs the same and no
quota applies, which is the behaviour before they existed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Priorities", "Quota", "Quotas"]


class Priorities(BaseModel):
    """The ``:priorities:`` section: owners' weights in the fair share of a pool's waiting queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Group name -> its users; a group's members wait as one owner."
    )
    classes: dict[str, float] = Field(
        default_factory=dict, description="Priority class -> weight (> 0); an owner in no class weighs 1."
    )
    members: dict[str, str] = Field(default_factory=dict, description="User or group -> its priority class.")

    @field_validator("classes")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not weight > 0:
                raise ValueError(f"the weight of class {name!r} must be above 0, got {weight}")
        return value

    @field_validator("groups", mode="before")
    @classmethod
    def _member_lists(cls, value: Any) -> Any:
        # `ci: jenkins gha-bot`, as other list keys are read
        if isinstance(value, dict):
            return {k: v.split() if isinstance(v, str) else v for k, v in value.items()}
        return value

    def owner_of(self, user: str | None) -> str:
        """The owner a user's checkouts count for: their group, else themselves; '' without a token."""
        if not user:
            return ""
        return next((group for group, users in self.groups.items() if user in users), user)

    def weight_of(self, owner: str) -> float:
        priority_class = self.members.get(owner)
        return self.classes.get(priority_class, 1.0) if priority_class is not None else 1.0


class Quota(BaseModel):
    """How many VMs one owner may have checked out at once: overall, and per pool (or alias)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    running: int | None = Field(None, ge=0, description="Checked-out VMs overall; unset: no limit.")
    pools: dict[str, int] = Field(
        default_factory=dict, description="Pool or alias -> checked-out VMs of it (an alias counts its pools together)."
    )

    @field_validator("pools")
    @classmethod
    def _not_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for name, limit in value.items():
            if limit < 0:
                raise ValueError(f"the quota of pool {name!r} must be 0 or more, got {limit}")
        return value


class Quotas(BaseModel):
    """The ``:quotas:`` section, by owner (a user, or a group of ``:priorities:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Quota | None = Field(None, description="The quota of every owner not listed in `owners`.")
    owners: dict[str, Quota] = Field(default_factory=dict, description="User or group -> its quota.")

    def for_owner(self, owner: str) -> Quota | None:
        """An owner's quota; checkouts without a token ('' owner) have none."""
        if not owner:
            return None
        return self.owners.get(owner, self.default)

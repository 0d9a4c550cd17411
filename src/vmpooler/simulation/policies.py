"""The sizing policies a simulation can run: vmpooler's static size, the ARC- and GitLab-style baselines,
and autoscale, which calls the manager's own ``decide`` (``vmpooler.sizing``)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from vmpooler.sizing import AutoscaleSpec, Observed, Profile, decide, learn_minute, learn_refill

__all__ = ["Autoscale", "IdleFactor", "Levels", "MinIdle", "Policy", "Static", "parse_policy"]


@dataclass(frozen=True, slots=True)
class Levels:
    """What a policy sees at a decision: the pool's VMs by state and the waiting VMs."""

    now: float
    ready: int
    pending: int
    running: int
    queued: int
    recent_checkouts: int
    recent_window_s: float
    clone_slots: int | None


class Policy(ABC):
    """A ready target (ready plus pending VMs to keep) for the levels it is shown. Every policy clones
    for the waiting queue too, as the manager does for waiting checkouts."""

    name = "policy"

    @abstractmethod
    def target(self, levels: Levels) -> int:
        """How many VMs to keep ready or cloning at these levels."""

    def learn_minute(self, minute_start: int, checkouts: int) -> None:  # noqa: B027 (optional hook)
        """A finished minute saw ``checkouts`` VMs asked for (only a learning policy keeps it)."""

    def learn_refill(self, seconds: float) -> None:  # noqa: B027 (optional hook)
        """One more clone took ``seconds`` to become ready."""


@dataclass
class Static(Policy):
    """vmpooler's ``size``: always N ready (each checkout starts a replacement)."""

    size: int

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"static:{self.size}"

    def target(self, levels: Levels) -> int:
        return self.size + levels.queued


@dataclass
class MinIdle(Policy):
    """Actions Runner Controller's ``minRunners``: at least N VMs in all (busy ones count), plus one
    per waiting job."""

    floor: int

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"min-idle:{self.floor}"

    def target(self, levels: Levels) -> int:
        return max(0, self.floor - levels.running) + levels.queued


@dataclass
class IdleFactor(Policy):
    """GitLab Runner's ``IdleScaleFactor``: idle VMs = factor x VMs in use, at least ``IdleCountMin``."""

    factor: float
    floor: int = 1

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"idle-factor:{self.factor:g}"

    def target(self, levels: Levels) -> int:
        return max(self.floor, math.ceil(self.factor * levels.running)) + levels.queued


@dataclass
class Autoscale(Policy):
    """The manager's rule: ``decide`` over a profile learned by ``learn_minute`` and ``learn_refill``."""

    spec: AutoscaleSpec
    profile: Profile = field(default_factory=Profile)
    name = "autoscale"

    def target(self, levels: Levels) -> int:
        observed = Observed(
            levels.now, levels.recent_checkouts, levels.recent_window_s, levels.queued, levels.clone_slots
        )
        return decide(self.spec, self.profile, observed).target

    def learn_minute(self, minute_start: int, checkouts: int) -> None:
        self.profile = learn_minute(self.profile, minute_start, checkouts)

    def learn_refill(self, seconds: float) -> None:
        self.profile = learn_refill(self.profile, seconds)


def parse_policy(text: str, spec: AutoscaleSpec) -> Policy:
    """``static:N``, ``min-idle:N``, ``idle-factor:F[:MIN]`` or ``autoscale`` (with ``spec``)."""
    kind, _, value = text.partition(":")
    try:
        if kind == "static":
            return Static(_count(value))
        if kind == "min-idle":
            return MinIdle(_count(value))
        if kind == "idle-factor":
            factor, _, floor = value.partition(":")
            if float(factor) < 0:
                raise ValueError("the factor must not be negative")
            return IdleFactor(float(factor), _count(floor) if floor else 1)
        if kind == "autoscale" and not value:
            return Autoscale(spec)
    except ValueError as exc:
        raise ValueError(f"policy {text!r}: {exc}") from exc
    raise ValueError(f"policy {text!r}: expected static:N, min-idle:N, idle-factor:F[:MIN] or autoscale")


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise ValueError("must not be negative")
    return number

"""The one sizing rule of autoscaled pools: learned demand and refill times in, a ready target out.

Pure functions over frozen values, so the manager (``manager/autoscale.py``) and the simulator
(``vmpooler.simulation``) make exactly the same decisions. The rule is a base-stock policy: a checkout
starts a replacement clone that is ready a refill time later, so the VMs a pool must hold ready are the
checkouts expected within that refill time, less the wait the target allows
(``lead = refill_p95 - target_wait_p95_s``). Demand is the larger of the recent rate and what the
hour-of-week profile learned for the hours the lead reaches into; bursts count by the busiest minute the
profile saw in those hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = [
    "DEFAULT_REFILL_S",
    "SLOTS",
    "AutoscaleSpec",
    "Decision",
    "Observed",
    "Profile",
    "Refill",
    "SlotFigures",
    "decide",
    "learn_minute",
    "learn_refill",
    "slot_of",
]

#: the profile's slots: the hours of a week (Monday 00h UTC is slot 0)
SLOTS = 7 * 24
#: the weight of the latest week in a slot's figures: a changed habit counts fully after 3-4 weeks
WEEK_WEIGHT = 0.4
#: what is left of a slot's largest burst after a week without one like it
PEAK_FADE = 0.8
#: a burst seen an hour before or after counts this much for this hour too (fan-outs follow people's
#: working hours, not the clock's exact hour)
NEIGHBOUR_WEIGHT = 0.85
#: a neighbouring hour's fan-out is not held once one at least this share of its size came this hour
#: or the last: the one expected around now has come (a nightly fan-out is not held for another hour)
BURST_CAME = 0.8
#: the weight of the latest refill time in its running mean and variance
REFILL_WEIGHT = 0.05
#: the refill time assumed before any was measured (a clone and boot of a typical VM)
DEFAULT_REFILL_S = 120.0
#: one-sided 95 % normal quantile: the margin on the refill time and on Poisson demand
Z95 = 1.645
#: fractions of a VM below this are not cloned for (a decayed profile must reach ``min``)
ROUNDING_SLACK = 0.25
#: 1970-01-01 was a Thursday: slot 0 (Monday 00h) is four days later
_EPOCH_WEEKDAY_OFFSET = 4 * 24
#: a burst is counted over this many consecutive minutes (a fan-out arrives within a minute or two)
BURST_MINUTES = 2


@dataclass(frozen=True, slots=True)
class AutoscaleSpec:
    """A pool's ``autoscale:`` section."""

    min: int
    max: int
    target_wait_p95_s: float
    idle_budget_vm_hours_per_day: float | None = None


@dataclass(frozen=True, slots=True)
class SlotFigures:
    """What one hour of the week looked like, averaged over the weeks seen (weights: WEEK_WEIGHT)."""

    mean_per_minute: float = 0.0
    #: the most VMs asked for within BURST_MINUTES consecutive minutes
    peak_burst: float = 0.0
    weeks: int = 0


@dataclass(frozen=True, slots=True)
class Refill:
    """Clone plus boot time: running mean and standard deviation in seconds."""

    mean_s: float = DEFAULT_REFILL_S
    sd_s: float = 0.0
    samples: int = 0

    @property
    def p95_s(self) -> float:
        return self.mean_s + Z95 * self.sd_s


@dataclass(frozen=True, slots=True)
class Profile:
    """What a pool's manager learned: per hour of the week, and its refill time. The hour being
    observed is accumulated (``hour``, ``hour_total``, ``hour_peak``) and folded into its slot when
    a minute of a later hour arrives."""

    slots: Mapping[int, SlotFigures] = field(default_factory=dict)
    refill: Refill = field(default_factory=Refill)
    hour: int | None = None
    hour_total: int = 0
    hour_peak: int = 0
    #: the last minute learned (epoch seconds of its start); a minute is learned once
    learned_through: int = -1
    #: the checkouts of that minute, to count bursts that straddle a minute's end
    last_minute: int = 0
    #: the largest burst of the last hour folded, and which hour that was
    folded_hour: int | None = None
    folded_peak: int = 0


@dataclass(frozen=True, slots=True)
class Observed:
    """What the deciding process sees now."""

    now: float
    #: checkouts (VMs) in the last ``recent_window_s`` seconds
    recent_checkouts: int = 0
    recent_window_s: float = 120.0
    #: VMs asked for by checkouts waiting now
    queued: int = 0
    #: clones that may run at once (``task_limit``): a larger target must be started earlier
    clone_slots: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    target: int
    reason: str


def slot_of(epoch_s: float) -> int:
    hours = int(epoch_s // 3600)
    return (hours - _EPOCH_WEEKDAY_OFFSET) % SLOTS


def _slot_name(slot: int) -> str:
    return f"{('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')[slot // 24]} {slot % 24:02d}h"


def learn_minute(profile: Profile, minute_start: int, checkouts: int) -> Profile:
    """``profile`` after the minute starting at ``minute_start`` saw ``checkouts`` (VMs). Minutes
    already learned are ignored; an hour with minutes missing (no manager ran) still counts whole,
    its missing minutes as zero, because a quiet minute is not recorded by every source."""
    if minute_start <= profile.learned_through:
        return profile
    hour = minute_start // 3600
    if profile.hour is not None and hour != profile.hour:
        profile = _fold_hour(profile)
    if profile.hour != hour:
        profile = replace(profile, hour=hour, hour_total=0, hour_peak=0)
    burst = checkouts + (profile.last_minute if profile.learned_through == minute_start - 60 else 0)
    return replace(
        profile,
        hour_total=profile.hour_total + checkouts,
        hour_peak=max(profile.hour_peak, burst),
        learned_through=minute_start,
        last_minute=checkouts,
    )


def _fold_hour(profile: Profile) -> Profile:
    assert profile.hour is not None
    slot = slot_of(profile.hour * 3600)
    seen = SlotFigures(profile.hour_total / 60, float(profile.hour_peak), 1)
    old = profile.slots.get(slot)
    if old is not None and old.weeks:
        seen = SlotFigures(
            _blend(old.mean_per_minute, seen.mean_per_minute, WEEK_WEIGHT),
            # a burst is rare in any one hour: the largest one seen counts, fading week by week
            max(seen.peak_burst, old.peak_burst * PEAK_FADE),
            old.weeks + 1,
        )
    return replace(
        profile,
        slots={**profile.slots, slot: seen},
        hour=None,
        hour_total=0,
        hour_peak=0,
        folded_hour=profile.hour,
        folded_peak=profile.hour_peak,
    )


def _blend(old: float, new: float, weight: float) -> float:
    return old + weight * (new - old)


def learn_refill(profile: Profile, seconds: float) -> Profile:
    """``profile`` after one more VM took ``seconds`` from clone start to ready."""
    refill = profile.refill
    if refill.samples == 0:
        return replace(profile, refill=Refill(seconds, 0.0, 1))
    # exponentially weighted mean and variance; the first samples count as a plain average
    weight = max(REFILL_WEIGHT, 1 / (refill.samples + 1))
    delta = seconds - refill.mean_s
    mean = refill.mean_s + weight * delta
    variance = (1 - weight) * (refill.sd_s**2 + weight * delta * delta)
    return replace(profile, refill=Refill(mean, math.sqrt(variance), refill.samples + 1))


def decide(spec: AutoscaleSpec, profile: Profile, observed: Observed) -> Decision:
    """The pool's ready target (ready plus pending VMs to keep) and why, always within min..max."""
    refill = profile.refill
    lead = max(0.0, refill.p95_s - spec.target_wait_p95_s)
    parts = [f"refill p95 {refill.p95_s:.0f}s, target wait {spec.target_wait_p95_s:g}s"]
    base = 0.0
    if lead > 0:
        base, why = _cover(spec, profile, observed, lead)
        parts.append(why)
    else:
        parts.append("refills within the target wait: nothing held ready")
    target = max(0, math.ceil(base - ROUNDING_SLACK))
    if spec.idle_budget_vm_hours_per_day is not None:
        cap = _budget_cap(spec.idle_budget_vm_hours_per_day, profile, observed.now)
        if target > cap:
            parts.append(f"idle budget caps {target} at {cap}")
            target = cap
    if observed.queued:
        parts.append(f"queue {observed.queued}")
        target += observed.queued
    bounded = min(max(target, spec.min), spec.max)
    if bounded != target:
        parts.append(f"bounded to {spec.min}..{spec.max}")
    return Decision(bounded, "; ".join(parts))


def _cover(spec: AutoscaleSpec, profile: Profile, observed: Observed, lead: float) -> tuple[float, str]:
    """The VMs that cover the checkouts expected within ``lead`` seconds, now and in every hour ahead
    whose VMs must be started now to be ready in time, and how that figure came about."""
    refill = profile.refill
    recent_rate = observed.recent_checkouts / max(observed.recent_window_s, 1.0)
    steady = recent_rate * lead
    best, why = steady + Z95 * math.sqrt(steady), f"recent {recent_rate * 60:.1f}/min"
    # with at most clone_slots clones at once, a target of n takes ceil(n / slots) refills to reach
    ramp_limit = math.ceil(spec.max / observed.clone_slots) * refill.mean_s if observed.clone_slots else 0.0
    hour = int(observed.now // 3600)
    for ahead in range(int((refill.p95_s + lead + ramp_limit) // 3600) + 2):
        starts = max(observed.now, (hour + ahead) * 3600)
        slot = slot_of(starts)
        figures = profile.slots.get(slot, SlotFigures())
        mean_rate = figures.mean_per_minute / 60
        # a burst seen at about this hour on a day of the same kind (working day or weekend) may come
        # a fan-out seen an hour before or after counts too, unless one like it came (BURST_CAME)
        came = _recent_burst(profile, observed.now)
        peak = max(
            (
                w * profile.slots[s].peak_burst
                for s, w in _alike(slot)
                if s in profile.slots and (w == 1 or came < BURST_CAME * profile.slots[s].peak_burst)
            ),
            default=0.0,
        )
        expected = mean_rate * lead
        cover = max(
            expected + Z95 * math.sqrt(expected),
            # the largest burst, as far as the lead reaches into it, then the mean rate after it
            peak * min(1.0, lead / 60) + mean_rate * max(0.0, lead - 60),
        )
        ramp = math.ceil(cover / observed.clone_slots) * refill.mean_s if observed.clone_slots else 0.0
        if starts - observed.now > refill.p95_s + lead + ramp:
            continue  # time enough to clone for this hour later
        if cover > best:
            best, why = cover, f"profile {_slot_name(slot)}: {figures.mean_per_minute:.1f}/min, bursts {peak:.0f}"
    return best, f"lead {lead:.0f}s, {why} -> {best:.1f}"


def _recent_burst(profile: Profile, now: float) -> int:
    """The largest fan-out the hour now or the one before saw (as far as learned)."""
    hour = int(now // 3600)
    seen = [(profile.hour, profile.hour_peak), (profile.folded_hour, profile.folded_peak)]
    return max((peak for at, peak in seen if at in (hour, hour - 1)), default=0)


def _alike(slot: int) -> list[tuple[int, float]]:
    """The slots of the same hour on the days of the same kind (Monday to Friday, or the weekend), and
    of the hours next to it at NEIGHBOUR_WEIGHT, each with its weight."""
    day, hour = divmod(slot, 24)
    days = range(5) if day < 5 else range(5, 7)
    near = [(h, 1.0 if h == hour else NEIGHBOUR_WEIGHT) for h in range(hour - 1, hour + 2) if 0 <= h < 24]
    return [(d * 24 + h, weight) for d in days for h, weight in near]


def _budget_cap(budget_vm_hours: float, profile: Profile, now: float) -> int:
    """The VMs this hour may hold: the day's budget shared out over its hours by their learned demand
    (evenly while nothing is learned)."""
    day_start = slot_of(now) // 24 * 24
    demand = [profile.slots.get(day_start + h, SlotFigures()).mean_per_minute for h in range(24)]
    total = sum(demand)
    share = demand[slot_of(now) % 24] / total if total > 0 else 1 / 24
    return max(0, math.floor(budget_vm_hours * share))

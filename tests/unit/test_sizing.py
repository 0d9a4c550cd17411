"""The sizing rule autoscaled pools share with the simulator: bounds, the queue, demand that stops."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmpooler.sizing import (
    AutoscaleSpec,
    Observed,
    Profile,
    Refill,
    SlotFigures,
    decide,
    learn_minute,
    learn_refill,
    slot_of,
)
from vmpooler.store.autoscale import dump_profile, load_profile

MONDAY = 1_704_067_200  # 2024-01-01 00:00 UTC

specs = st.builds(
    lambda low, extra, wait, budget: AutoscaleSpec(low, low + extra, wait, budget),
    st.integers(0, 50),
    st.integers(0, 200),
    st.floats(0, 600),
    st.none() | st.floats(0, 5000),
)
profiles = st.builds(
    Profile,
    slots=st.dictionaries(
        st.integers(0, 167),
        st.builds(SlotFigures, st.floats(0, 500), st.floats(0, 5000), st.integers(1, 50)),
        max_size=20,
    ),
    refill=st.builds(Refill, st.floats(0.1, 3600), st.floats(0, 600), st.integers(0, 10_000)),
)
observations = st.builds(
    Observed,
    now=st.floats(MONDAY, MONDAY + 30 * 86400),
    recent_checkouts=st.integers(0, 10_000),
    recent_window_s=st.floats(1, 600),
    queued=st.integers(0, 1000),
    clone_slots=st.none() | st.integers(1, 100),
)


@given(specs, profiles, observations)
def test_the_target_never_leaves_min_to_max(spec: AutoscaleSpec, profile: Profile, observed: Observed) -> None:
    decision = decide(spec, profile, observed)
    assert spec.min <= decision.target <= spec.max
    assert decision.reason


@given(specs, profiles, observations, st.integers(1, 100))
def test_the_target_grows_under_the_queue(spec: AutoscaleSpec, profile: Profile, observed: Observed, more: int) -> None:
    before = decide(spec, profile, observed).target
    after = decide(
        spec,
        profile,
        Observed(
            observed.now,
            observed.recent_checkouts,
            observed.recent_window_s,
            observed.queued + more,
            observed.clone_slots,
        ),
    ).target
    assert after >= before
    assert after >= min(spec.max, observed.queued + more), "every VM waited for is cloned for, up to max"


@given(specs, st.floats(1, 600), st.integers(1, 10_000))
def test_the_target_falls_to_min_when_recent_demand_stops(spec: AutoscaleSpec, refill: float, burst: int) -> None:
    profile = learn_refill(Profile(), refill)
    busy = decide(spec, profile, Observed(MONDAY, burst, 60))
    quiet = decide(spec, profile, Observed(MONDAY + 600, 0, 60))
    assert busy.target >= quiet.target == spec.min


def test_a_learned_week_fades_to_min_after_weeks_without_demand() -> None:
    spec = AutoscaleSpec(2, 500, 1.0)
    profile = learn_refill(Profile(), 90.0)
    week = 7 * 24 * 60
    for minute in range(week):  # one week with a 40-VM fan-out each day at 10h
        profile = learn_minute(profile, MONDAY + minute * 60, 40 if minute % 1440 == 600 else 0)
    tuesday_ten = MONDAY + 7 * 86400 + 86400 + 10 * 3600
    assert decide(spec, profile, Observed(tuesday_ten)).target >= 30, "the profile must foresee the fan-out"
    for minute in range(week, 24 * week):
        profile = learn_minute(profile, MONDAY + minute * 60, 0)
    assert decide(spec, profile, Observed(tuesday_ten + 23 * 7 * 86400)).target == spec.min


def test_the_target_is_reached_before_a_learned_burst() -> None:
    """With 10 clones at a time a 60-VM fan-out at 00:02 needs its clones started well before."""
    spec = AutoscaleSpec(0, 500, 1.0)
    profile = learn_refill(Profile(), 90.0)
    for minute in range(7 * 24 * 60):
        profile = learn_minute(profile, MONDAY + minute * 60, 60 if minute % 1440 == 2 else 0)
    next_week = MONDAY + 7 * 86400
    assert slot_of(next_week) == 0
    sunday_late = next_week - 600
    early = decide(spec, profile, Observed(sunday_late, clone_slots=10))
    assert early.target >= 50, early.reason
    assert decide(spec, profile, Observed(sunday_late)).target < 5, "no clone limit: no need to start yet"


def test_a_target_wait_longer_than_a_refill_holds_nothing_ready() -> None:
    profile = learn_refill(Profile(), 30.0)
    decision = decide(AutoscaleSpec(0, 100, 60.0), profile, Observed(MONDAY, 500, 60))
    assert decision.target == 0 and "within the target wait" in decision.reason


def test_the_idle_budget_caps_the_target_but_not_the_queue() -> None:
    profile = learn_refill(Profile(), 120.0)
    free = decide(AutoscaleSpec(0, 500, 1.0), profile, Observed(MONDAY, 300, 60, queued=5))
    capped = decide(AutoscaleSpec(0, 500, 1.0, idle_budget_vm_hours_per_day=48), profile, Observed(MONDAY, 300, 60, 5))
    assert free.target > 7 and capped.target == 2 + 5, capped.reason  # 48 VM-hours a day: 2 an hour


def test_a_profile_survives_its_json_form() -> None:
    profile = learn_refill(learn_refill(Profile(), 80.0), 100.0)
    for minute in range(3 * 60):
        profile = learn_minute(profile, MONDAY + minute * 60, 30 if minute == 70 else 1)
    assert load_profile(dump_profile(profile)) == profile

"""Issue 19's proof in simulated time: the sizing policies on the bursty week, each tuned to its smallest
setting meeting p95 wait <= 1 s, compared by idle VM-hours; and fairness at 2x overload.

The simulator is ``vmpooler simulate`` (src/vmpooler/simulation/): a discrete-event run of one pool whose
autoscale decisions are the manager's own ``vmpooler.sizing.decide``. No VM is made and nothing sleeps,
so the figures do not depend on the machine's load.

    .venv/bin/python bench/autoscale.py [--quick] [--json FILE]
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from common import argument_parser, benchmark_main, console, parse_with_figures
from vmpooler.cli.simulate import summary
from vmpooler.simulation import Arrival, Lognormal, SimulationSettings, parse_policy, read_trace, simulate
from vmpooler.simulation.engine import TRACE_EPOCH, WEEK_S
from vmpooler.simulation.policies import Policy
from vmpooler.simulation.trace import bursty_week
from vmpooler.sizing import AutoscaleSpec

TRACES = Path(__file__).resolve().parent / "traces"
#: the three weeks before the bursty week autoscale learns from: weeks before -> seed (traces/generate.py)
WARMUP_SEEDS = {3: 2, 2: 3, 1: 4}
TARGET_P95_S = 1.0
SPEC = AutoscaleSpec(0, 500, TARGET_P95_S)
#: clone + boot of a cloud VM; the dummy provider of the end-to-end replay draws the same
REFILL = Lognormal(90.0, 30.0)
#: vmpooler's default task_limit
CLONE_SLOTS = 10


def settings() -> SimulationSettings:
    return SimulationSettings(refill=REFILL, clone_slots=CLONE_SLOTS)


#: the trace's first this many days (all 7 unless --days says fewer)
DAYS = [7.0]


def trace(name: str) -> list[Arrival]:
    return [a for a in read_trace(TRACES / name) if a.at < DAYS[0] * 86400]


def run_policy(text: str, warm: bool = False) -> dict[str, Any]:
    policy = parse_policy(text, SPEC)
    for weeks_before, seed in WARMUP_SEEDS.items() if warm else ():
        earlier = [a for a in bursty_week(seed) if a.at < DAYS[0] * 86400]
        simulate(earlier, policy, settings(), start=TRACE_EPOCH - weeks_before * WEEK_S)
    figures = summary(simulate(trace("bursty-week.csv"), policy, settings()), TARGET_P95_S)
    figures["setting"] = text
    console.print(
        f"  {text:<18} p95 {figures['wait_p95_s']:>7.1f}s  p99 {figures['wait_p99_s']:>7.1f}s  "
        f"idle {figures['idle_vm_hours']:>8.0f} VM-h",
        highlight=False,
    )
    return figures


def smallest(make: Callable[[float], str], low: float, high: float, step: float) -> dict[str, Any]:
    """The smallest setting in [low, high] (to ``step``) whose run meets the p95 target; the wait falls
    as the setting grows, so a bisection finds it."""
    best = run_policy(make(high))
    if best["wait_p95_s"] > TARGET_P95_S:
        best["meets"] = False
        return best
    while high - low > step:
        middle = round((low + high) / 2 / step) * step
        if middle in (low, high):
            break
        figures = run_policy(make(middle))
        if figures["wait_p95_s"] <= TARGET_P95_S:
            high, best = middle, figures
        else:
            low = middle
    best["meets"] = True
    return best


def fairness(weights: dict[str, float], hours: float = 6.0) -> dict[str, Any]:
    """Three owners, each asking (Poisson) for two thirds of what the pool can clone: 2x overload
    together, and every owner more than its weighted share, so each stays backlogged and the VMs it
    gets are what the fair queue gives it."""
    rng = random.Random(5)
    capacity_per_s = CLONE_SLOTS / REFILL.mean  # VMs the pool can make per second, all slots busy
    arrivals: list[Arrival] = []
    per_owner = 2 * capacity_per_s / len(weights)  # together: 2x overload
    for owner in weights:
        at = 0.0
        while (at := at + rng.expovariate(per_owner)) < hours * 3600:
            arrivals.append(Arrival(round(at, 1), owner, 1))
    policy: Policy = parse_policy("static:0", SPEC)
    result = simulate(
        sorted(arrivals), policy, SimulationSettings(refill=REFILL, clone_slots=CLONE_SLOTS, weights=weights)
    )
    # the shares while overloaded: the first 'hours' (the run goes on until the backlog is served)
    served = dict.fromkeys(weights, 0)
    for arrived, wait, owner in zip(result.arrived, result.waits, result.owners, strict=True):
        if arrived + wait <= hours * 3600:
            served[owner] += 1
    total = sum(served.values())
    weight_total = sum(weights.values())
    shares = {o: served[o] / total for o in weights}
    expected = {o: w / weight_total for o, w in weights.items()}
    deviation = max(abs(shares[o] - expected[o]) / expected[o] for o in weights)
    return {
        "weights": weights,
        "served": served,
        "shares": shares,
        "expected": expected,
        "max_relative_deviation": deviation,
    }


def run(quick: bool) -> dict[str, Any]:
    console.print("autoscale (the manager's rule, after three earlier weeks):")
    autoscale = run_policy("autoscale", warm=True)
    console.print("static (vmpooler's size), smallest meeting p95:")
    static = smallest(lambda n: f"static:{n:.0f}", 0, 200, 1 if not quick else 8)
    console.print("min-idle (ARC minRunners), smallest meeting p95:")
    min_idle = smallest(lambda n: f"min-idle:{n:.0f}", 0, 300, 1 if not quick else 8)
    # the factor alone never meets p95 (a nightly fan-out finds nothing in use, so nothing idle): its
    # floor, IdleCountMin, is tuned too, for a few factors; the one with the fewest idle VM-hours counts
    tuned = []
    for factor in (0.25, 0.5, 1.0):
        console.print(f"idle-factor {factor:g} (GitLab IdleScaleFactor), smallest IdleCountMin meeting p95:")
        tuned.append(smallest(lambda m, f=factor: f"idle-factor:{f:g}:{m:.0f}", 0, 200, 1 if not quick else 8))
    idle_factor = min((t for t in tuned if t["meets"]), key=lambda t: t["idle_vm_hours"], default=tuned[-1])
    fair = fairness({"small": 1.0, "medium": 2.0, "large": 3.0}, hours=6.0 if not quick else 1.0)
    return {
        "autoscale": autoscale,
        "static": static,
        "min_idle": min_idle,
        "idle_factor": idle_factor,
        "fairness": fair,
        "clone_mean_s": REFILL.mean,
    }


def below(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    return 1 - ours["idle_vm_hours"] / theirs["idle_vm_hours"] if theirs["idle_vm_hours"] else 0.0


def report(figures: dict[str, Any], load: float) -> None:
    table = Table(
        title=f"bursty week, p95 target {TARGET_P95_S:g}s (simulated time: the load of {load:.1f} does not matter)"
    )
    for column in (
        "policy",
        "setting",
        "meets p95",
        "p95 s",
        "p99 s",
        "idle VM-h",
        "idle s/checkout",
        "clones",
        "autoscale below",
    ):
        table.add_column(column)
    auto = figures["autoscale"]
    for name in ("autoscale", "static", "min_idle", "idle_factor"):
        row = figures[name]
        table.add_row(
            name,
            row["setting"],
            "yes" if row["wait_p95_s"] <= TARGET_P95_S else "no",
            f"{row['wait_p95_s']:.1f}",
            f"{row['wait_p99_s']:.1f}",
            f"{row['idle_vm_hours']:.0f}",
            f"{row['idle_vm_seconds_per_checkout']:.0f}",
            str(row["clones"]),
            "" if name == "autoscale" else f"{below(auto, row):.0%}",
        )
    console.print(table)
    fair = figures["fairness"]
    console.print(
        "fairness at 2x overload: shares "
        + ", ".join(f"{o} {fair['shares'][o]:.3f} (weight {fair['expected'][o]:.3f})" for o in fair["shares"])
        + f"; largest deviation {fair['max_relative_deviation']:.1%} of a weight",
        highlight=False,
    )
    clone = figures["clone_mean_s"]
    verdicts = {
        "p95 <= 1s": auto["wait_p95_s"] <= TARGET_P95_S,
        f"p99 <= one clone time ({clone:.0f}s)": auto["wait_p99_s"] <= clone,
        ">= 30% below static": below(auto, figures["static"]) >= 0.30,
        ">= 15% below min-idle": below(auto, figures["min_idle"]) >= 0.15,
        ">= 15% below idle-factor": below(auto, figures["idle_factor"]) >= 0.15,
        "fairness within 5%": fair["max_relative_deviation"] <= 0.05,
    }
    figures["verdicts"] = verdicts
    console.print("targets: " + "; ".join(f"{k} {'PASS' if v else 'MISS'}" for k, v in verdicts.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="coarser tuning steps (about a minute)")
    parser.add_argument("--days", type=float, default=7.0, help="only the trace's first DAYS days (smoke runs)")
    args = parse_with_figures(parser, argv)
    DAYS[0] = args.days
    return benchmark_main("autoscale", args, lambda: run(args.quick), report)


if __name__ == "__main__":
    sys.exit(main())

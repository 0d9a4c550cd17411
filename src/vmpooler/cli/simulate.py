"""``vmpooler simulate``: replay a checkout trace against one pool under a sizing policy, in simulated time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vmpooler.simulation.engine import TRACE_EPOCH, WEEK_S, Lognormal, Result, SimulationSettings, simulate
from vmpooler.simulation.policies import Policy, parse_policy
from vmpooler.simulation.trace import read_trace
from vmpooler.sizing import AutoscaleSpec


def run(
    trace: Path,
    policy: Policy,
    settings: SimulationSettings,
    warmups: list[Path],
    show_progress: bool = False,
) -> Result:
    """Warm the policy up on each of ``warmups`` (the weeks before, oldest first), then run ``trace``."""
    for weeks_before, warmup in zip(range(len(warmups), 0, -1), warmups, strict=True):
        simulate(read_trace(warmup), policy, settings, start=TRACE_EPOCH - weeks_before * WEEK_S)
    arrivals = read_trace(trace)
    if not show_progress:
        return simulate(arrivals, policy, settings)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"{policy.name} on {trace.name}", total=1.0)
        result = simulate(arrivals, policy, settings, progress=lambda done: bar.update(task, completed=done))
    return result


def summary(result: Result, target_wait_s: float) -> dict[str, object]:
    checkouts = sum(result.served.values())
    return {
        "policy": result.policy,
        "requests": len(result.waits),
        "vms": checkouts,
        "wait_p50_s": round(result.percentile(0.50), 2),
        "wait_p95_s": round(result.percentile(0.95), 2),
        "wait_p99_s": round(result.percentile(0.99), 2),
        "wait_max_s": round(max(result.waits, default=0.0), 2),
        "slo_attainment": round(result.attainment(target_wait_s), 4),
        "idle_vm_hours": round(result.idle_vm_hours, 1),
        "idle_vm_seconds_per_checkout": round(result.idle_vm_seconds / checkouts, 1) if checkouts else 0.0,
        "clones": result.clones,
        "served_by_owner": dict(sorted(result.served.items())),
    }


def simulate_command(
    trace: Annotated[Path, typer.Option("--trace", exists=True, dir_okay=False, help="CSV: t,owner,count")],
    policy: Annotated[str, typer.Option(help="static:N, min-idle:N, idle-factor:F[:MIN] or autoscale")] = "autoscale",
    min_ready: Annotated[int, typer.Option("--min", min=0, help="autoscale: min")] = 0,
    max_ready: Annotated[int, typer.Option("--max", min=0, help="autoscale: max")] = 500,
    target_wait: Annotated[float, typer.Option(min=0, help="autoscale: target_wait_p95_s")] = 1.0,
    idle_budget: Annotated[float | None, typer.Option(min=0, help="autoscale: idle_budget_vm_hours_per_day")] = None,
    clone_mean: Annotated[float, typer.Option(min=0.001, help="clone+boot seconds: mean (lognormal)")] = 90.0,
    clone_sd: Annotated[float, typer.Option(min=0, help="clone+boot seconds: standard deviation")] = 30.0,
    hold_mean: Annotated[float, typer.Option(min=0.001, help="seconds a VM is used: mean")] = 1200.0,
    hold_sd: Annotated[float, typer.Option(min=0, help="seconds a VM is used: standard deviation")] = 900.0,
    task_limit: Annotated[int, typer.Option(min=0, help="clones at once (0: no limit)")] = 10,
    seed: Annotated[int, typer.Option(help="seed of the clone and hold times")] = 1,
    warmup: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="a trace of an earlier week to learn from first (repeat)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
) -> None:
    """Simulate one pool over a checkout trace: waits, idle VM-hours, clones (no VM is made)."""
    spec = AutoscaleSpec(min_ready, max_ready, target_wait, idle_budget)
    if min_ready > max_ready:
        raise typer.BadParameter(f"--min ({min_ready}) must not exceed --max ({max_ready})")
    try:
        chosen = parse_policy(policy, spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    settings = SimulationSettings(
        refill=Lognormal(clone_mean, clone_sd),
        hold=Lognormal(hold_mean, hold_sd),
        clone_slots=task_limit or None,
        seed=seed,
    )
    try:
        result = run(trace, chosen, settings, list(warmup or []), show_progress=not as_json)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trace") from exc
    figures = summary(result, target_wait)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        typer.echo(f"{key:>30}: {value}")

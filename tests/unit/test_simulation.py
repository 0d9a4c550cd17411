"""The simulator on a tiny trace: deterministic with a seed, and its policies behave as documented."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vmpooler.cli.main import app
from vmpooler.simulation import Arrival, Lognormal, SimulationSettings, parse_policy, read_trace, simulate
from vmpooler.simulation.engine import TRACE_EPOCH, WEEK_S
from vmpooler.simulation.fairqueue import FairQueue, Waiting
from vmpooler.simulation.trace import write_trace
from vmpooler.sizing import AutoscaleSpec

SPEC = AutoscaleSpec(0, 100, 1.0)
SETTINGS = SimulationSettings(refill=Lognormal(60, 20), hold=Lognormal(300, 100), seed=7)


def tiny_trace() -> list[Arrival]:
    """Singles every five minutes for a day, and a 20-job fan-out at 10:00 and 15:00."""
    singles = [Arrival(float(t), "alice") for t in range(0, 86400, 300)]
    bursts = [Arrival(hour * 3600 + 2.0 * i, "ci") for hour in (10, 15) for i in range(20)]
    return sorted(singles + bursts)


def test_a_seeded_run_is_repeatable_and_policies_differ() -> None:
    trace = tiny_trace()
    first = simulate(trace, parse_policy("static:2", SPEC), SETTINGS)
    again = simulate(trace, parse_policy("static:2", SPEC), SETTINGS)
    assert first.waits == again.waits and first.idle_vm_seconds == again.idle_vm_seconds
    assert len(first.waits) == len(trace) and sum(first.served.values()) == len(trace)
    assert first.percentile(0.99) > 30, "a 20-job fan-out on 2 ready VMs waits for clones"
    ample = simulate(trace, parse_policy("static:25", SPEC), SETTINGS)
    assert max(ample.waits) == 0 and ample.idle_vm_hours > 20 * 23


def test_autoscale_learns_the_fanouts_from_an_earlier_day() -> None:
    trace = tiny_trace()
    cold = simulate(trace, parse_policy("autoscale", SPEC), SETTINGS)
    warm_policy = parse_policy("autoscale", SPEC)
    # the same day a week earlier: the hour-of-week profile then foresees both fan-outs
    simulate(trace, warm_policy, SETTINGS, start=TRACE_EPOCH - WEEK_S)
    warm = simulate(trace, warm_policy, SETTINGS)
    assert warm.attainment(1.0) > cold.attainment(1.0)
    assert warm.attainment(1.0) >= 0.95
    static = simulate(trace, parse_policy("static:20", SPEC), SETTINGS)
    assert warm.idle_vm_hours < 0.5 * static.idle_vm_hours


def test_fair_queue_serves_owners_by_weight() -> None:
    queue = FairQueue({"a": 1, "b": 1, "c": 2})
    for i in range(100):
        for owner in "abc":
            queue.push(Waiting(float(i), owner, 1))
    served = [request.owner for _ in range(80) for request in queue.take(1)]
    assert (served.count("a"), served.count("b"), served.count("c")) == (20, 20, 40)
    queue.push(Waiting(200.0, "d", 5))  # a newcomer starts level with the least served, not at 0
    assert [r.owner for r in queue.take(5)] != ["d"]


def test_simulate_command_prints_the_figures(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.csv"
    write_trace(trace, tiny_trace())
    assert read_trace(trace) == tiny_trace()
    run = CliRunner().invoke(app, ["simulate", "--trace", str(trace), "--policy", "static:3", "--json"])
    assert run.exit_code == 0, run.output
    figures = json.loads(run.output)
    assert figures["policy"] == "static:3" and figures["requests"] == len(tiny_trace())
    assert figures["wait_p99_s"] > 0 and 0 < figures["slo_attainment"] < 1
    bad = CliRunner().invoke(app, ["simulate", "--trace", str(trace), "--policy", "static:x"])
    assert bad.exit_code == 2 and "static:x" in bad.output

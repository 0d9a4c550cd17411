"""The pool manager at 1,000 pools / 10,000 VMs, in process, no HTTP (results in BENCHMARKS.md).

Starts a private redis-server, builds a ``Manager`` over the real store and the in-memory dummy
provider with instant clones and boots (manager_harness.py), fills every pool, and measures:

1. one full ``run_once()`` pass in steady state (every pool full, nothing changing): wall time, CPU
   time, Redis commands (``INFO commandstats``) and round trips (requests written to a connection; a
   pipeline is one), and the process' resident memory;
2. one pass after one VM was checked out in each of ``--changed`` pools: what a changed pool costs;
3. the steady pass again with the same pools holding one VM each: what of a pass grows with VMs;
4. the running manager (``Manager.run``, a loop per pool passing every second, nothing due) over the
   full pools for ``--running-seconds``: its passes, how many of them read their pool from Redis, its
   round trips per pool pass and its CPU. The history sampler is moved out of the window (it writes
   once a minute, not per pass).

When the CPU target is missed it profiles one more steady pass (cProfile, top by cumulative time).
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/manager_scale.py [--pools 1000] [--vms 10000] [--changed 100] [--running-seconds 20]
        [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    memory_mib,
    parse_with_figures,
    run_async,
    start_redis,
    verdict,
)
from manager_harness import (
    RoundTrips,
    command_calls,
    fill_by_passes,
    manager_for,
    pool_sizes,
    settings_for,
)
from vmpooler.manager.loop import FIRST_PASS_SPREAD, FIRST_PASS_SPREAD_MAX, Manager
from vmpooler.providers.dummy import DummyProvider
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

CPU_TARGET_MS = 100.0
RSS_TARGET_MIB = 150.0
#: clones in flight while filling: high, so the fill is quick (fill_rate.py measures the default of 10)
FILL_TASK_LIMIT = 200
#: the running manager's pass over an unchanged pool may make this many round trips on average
UNCHANGED_TRIPS_PER_POOL = 0.1
#: the running manager's cadence for its measurement: every pool passes every second
RUNNING_LOOP_SECONDS = 1.0


@dataclass
class Pass:
    wall_ms: float
    cpu_ms: float
    commands: int
    round_trips: int
    changed_pools: int
    by_command: dict[str, int]


async def one_pass(manager: Manager, store: Store, *, quiet: bool = False) -> Pass:
    commands_before = await command_calls(store)
    trips_before = RoundTrips.count
    cpu, wall = time.process_time(), time.perf_counter()
    results = await manager.run_once(quiet=quiet)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trips = RoundTrips.count - trips_before
    by_command = await command_calls(store) - commands_before
    return Pass(wall * 1000, cpu * 1000, by_command.total(), trips, sum(results.values()), dict(by_command))


async def profile_pass(manager: Manager, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    await manager.run_once()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


@dataclass
class Running:
    """The running manager over unchanged pools, for a window of ``seconds``."""

    seconds: float
    pool_passes: int
    full_passes: int
    round_trips: int
    cpu_ms: float

    @property
    def trips_per_pass(self) -> float:
        return self.round_trips / max(1, self.pool_passes)


async def running_manager(store: Store, filled_manager: Manager, sizes: Sequence[int], seconds: float) -> Running:
    """``Manager.run`` over the filled pools (same Redis, same provider), measured after a warm-up."""
    settings = settings_for(
        sizes,
        FILL_TASK_LIMIT,
        check_loop_delay_min=RUNNING_LOOP_SECONDS,
        check_loop_delay_max=RUNNING_LOOP_SECONDS,
        vm_checktime=60,  # nothing comes due in the window: every pool is unchanged
    )
    provider = next(iter(filled_manager.reconcilers.values())).ctx.provider
    assert isinstance(provider, DummyProvider)
    manager = manager_for(settings, store, provider, history_wait=lambda _now: 3600.0)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, grace=5))
    try:
        # the first passes (spread over up to FIRST_PASS_SPREAD_MAX at start) check the index and settle
        spread = min(FIRST_PASS_SPREAD * len(sizes), FIRST_PASS_SPREAD_MAX)
        await asyncio.sleep(spread + 3 * RUNNING_LOOP_SECONDS)
        reconcilers = list(manager.reconcilers.values())
        passes, full = sum(r.passes for r in reconcilers), sum(r.full_passes for r in reconcilers)
        trips, cpu = RoundTrips.count, time.process_time()
        await asyncio.sleep(seconds)
        return Running(
            seconds,
            sum(r.passes for r in reconcilers) - passes,
            sum(r.full_passes for r in reconcilers) - full,
            RoundTrips.count - trips,
            (time.process_time() - cpu) * 1000,
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@dataclass
class Figures:
    pools: int
    vms: int
    fill_seconds: float
    fill_rate: float
    steady: list[Pass]
    quiet: list[Pass]
    changed: Pass
    changed_asked: int
    one_vm: list[Pass]
    running: Running
    rss_mib: float
    hwm_mib: float
    profile: str


async def filled(store: Store, sizes: Sequence[int], max_seconds: float) -> tuple[Manager, float]:
    """A manager over an emptied Redis, run until every pool is full; returns it and the seconds taken."""
    await store.client.flushdb()
    # ready VMs re-checked hourly, not each minute: on a loaded machine the fill takes over a minute, and
    # the first VMs' checks would fall into the steady passes (a check is due work, not a steady pass)
    manager = manager_for(settings_for(sizes, FILL_TASK_LIMIT, vm_checktime=60), store)
    await manager.register_pools()
    ready, seconds, passes = await fill_by_passes(store, manager, sum(sizes), max_seconds)
    if ready < sum(sizes):
        raise RuntimeError(f"only {ready} of {sum(sizes)} VMs ready after {max_seconds:.0f}s")
    console.print(f"  {ready} VMs in {seconds:.1f}s ({ready / seconds:,.0f} VMs/s, {passes} passes)", highlight=False)
    await manager.run_once()  # warm: the first pass after filling may still settle the last clones
    return manager, seconds


async def change_pools(store: Store, manager: Manager, count: int) -> int:
    """Check one ready VM out of each of the first ``count`` pools, as a user would; returns how many."""
    taken = 0
    for pool in list(manager.reconcilers)[:count]:
        taken += isinstance(await store.checkout([[pool]], time.time()), list)
    return taken


async def measure(store: Store, args: argparse.Namespace) -> Figures:
    sizes = pool_sizes(args.pools, args.vms)
    console.print(f"filling {args.pools} pools / {sum(sizes)} VMs with task_limit {FILL_TASK_LIMIT} ...")
    manager, fill_seconds = await filled(store, sizes, args.max_seconds)
    steady = [await one_pass(manager, store) for _ in range(args.passes)]
    # as the running manager passes when no event came: settled pools compared with the provider's
    # inventory and the shared census only (the census is read once per 5 s: the first pass reads it)
    quiet = [await one_pass(manager, store, quiet=True) for _ in range(args.passes)]
    memory = memory_mib()
    profile = ""
    if args.profile or median([p.cpu_ms for p in steady]) > CPU_TARGET_MS:
        profile = await profile_pass(manager, 15)
    asked = await change_pools(store, manager, args.changed)
    changed = await one_pass(manager, store)
    for reconciler in manager.reconcilers.values():
        await reconciler.lifecycle.drain(30)
    await manager.run_once()  # the refilled pools settle
    console.print(f"the running manager over the full pools for {args.running_seconds:g}s ...")
    running = await running_manager(store, manager, sizes, args.running_seconds)
    console.print(f"filling {args.pools} pools with 1 VM each, for comparison ...")
    small, _ = await filled(store, [1] * args.pools, args.max_seconds)
    one_vm = [await one_pass(small, store) for _ in range(args.passes)]
    return Figures(
        args.pools,
        sum(sizes),
        fill_seconds,
        sum(sizes) / fill_seconds,
        steady,
        quiet,
        changed,
        asked,
        one_vm,
        running,
        memory["rss_mib"],
        memory["hwm_mib"],
        profile,
    )


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def verdicts(fig: Figures) -> dict[str, Any]:
    """Each target's measured figure and whether it is met."""
    cpu = median([p.cpu_ms for p in fig.quiet])
    forced_cpu = median([p.cpu_ms for p in fig.steady])
    trips = median([p.round_trips for p in fig.steady])
    one_trips = median([p.round_trips for p in fig.one_vm])
    per_changed = (fig.changed.round_trips - trips) / fig.changed_asked if fig.changed_asked else float("nan")
    return {
        "cpu_ms": cpu,
        "forced_cpu_ms": forced_cpu,
        "cpu_ok": cpu <= CPU_TARGET_MS,
        "round_trips": trips,
        "round_trips_one_vm": one_trips,
        "trips_flat_in_vms": trips <= one_trips * 1.1,
        "unchanged_trips_per_pool": trips / fig.pools,
        "trips_per_changed_pool": per_changed,
        "running_trips_per_pass": fig.running.trips_per_pass,
        "running_full_share": fig.running.full_passes / max(1, fig.running.pool_passes),
        "running_cpu_share": fig.running.cpu_ms / 1000 / fig.running.seconds,
        "trips_follow_changes": fig.running.trips_per_pass <= UNCHANGED_TRIPS_PER_POOL,
        "hwm_mib": fig.hwm_mib,
        "rss_ok": fig.hwm_mib <= RSS_TARGET_MIB,
    }


def report(fig: Figures) -> None:
    passes = Table(title="run_once() passes: steady (all full, nothing changing) and after checkouts")
    for column in ("pass", "VMs", "wall ms", "CPU ms", "Redis commands", "round trips", "pools changed"):
        passes.add_column(column, justify="right")
    rows = [(f"steady {i}", fig.vms, p) for i, p in enumerate(fig.steady, 1)]
    rows += [(f"steady, quiet {i}", fig.vms, p) for i, p in enumerate(fig.quiet, 1)]
    rows.append((f"{fig.changed_asked} checked out", fig.vms, fig.changed))
    rows += [(f"1 VM/pool {i}", fig.pools, p) for i, p in enumerate(fig.one_vm, 1)]
    for label, vms, p in rows:
        passes.add_row(
            label, str(vms), f"{p.wall_ms:.0f}", f"{p.cpu_ms:.0f}", str(p.commands), str(p.round_trips),
            str(p.changed_pools),
        )  # fmt: skip
    console.print(passes)
    v = verdicts(fig)
    mix = ", ".join(f"{name} {n / fig.pools:g}" for name, n in Counter(fig.steady[-1].by_command).most_common())
    console.print(f"Redis commands per pool in one steady pass: {mix or 'none'}", highlight=False)
    console.print(
        f"target one steady pass (the running manager's: quiet) <= {CPU_TARGET_MS:g} ms CPU: {v['cpu_ms']:.0f} ms "
        f"(a forced pass that reads every pool: {v['forced_cpu_ms']:.0f} ms) {verdict(v['cpu_ok'])}",
        highlight=False,
    )
    console.print(
        f"target round trips do not grow with VMs: {v['round_trips_one_vm']:.0f} at {fig.pools} VMs, "
        f"{v['round_trips']:.0f} at {fig.vms} VMs {verdict(v['trips_flat_in_vms'])}",
        highlight=False,
    )
    run = fig.running
    console.print(
        f"running manager, {fig.pools} unchanged pools passing every {RUNNING_LOOP_SECONDS:g}s for {run.seconds:g}s: "
        f"{run.pool_passes} pool passes, {run.full_passes} of them read their pool, {run.round_trips} round trips, "
        f"CPU {run.cpu_ms:.0f} ms ({v['running_cpu_share']:.0%} of a core)",
        highlight=False,
    )
    console.print(
        f"target round trips per unchanged pool's pass (running manager) <= {UNCHANGED_TRIPS_PER_POOL:g}: "
        f"{run.trips_per_pass:.3f}; a forced pass (run_once) makes {v['unchanged_trips_per_pool']:.2f} per pool "
        f"and {v['trips_per_changed_pool']:.1f} more per changed pool {verdict(v['trips_follow_changes'])}",
        highlight=False,
    )
    console.print(
        f"target RSS <= {RSS_TARGET_MIB:g} MiB: {fig.hwm_mib:.0f} MiB peak ({fig.rss_mib:.0f} now) "
        f"{verdict(v['rss_ok'])}",
        highlight=False,
    )
    if fig.profile:
        console.print("one steady pass under cProfile, top 15 by cumulative time:")
        console.print(fig.profile, markup=False, highlight=False)


async def bench(redis_port: int, args: argparse.Namespace) -> Figures:
    # run_once() starts every pool's pass at once: on a loaded machine the default 64 connections made
    # passes wait past the socket timeout for one while filling ("No connection available"). A connection
    # each keeps this a measure of the passes, not of the wait.
    store = Store(connect("127.0.0.1", redis_port, max_connections=args.pools + FILL_TASK_LIMIT))
    try:
        return await measure(store, args)
    finally:
        await store.close()


def run(args: argparse.Namespace) -> Figures:
    RoundTrips.install()
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        redis_port, _ = start_redis(children, Path(tmp))
        return run_async(bench(redis_port, args))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--pools", type=int, default=1000, help="configured pools (default 1000)")
    parser.add_argument("--vms", type=int, default=10000, help="total pool size (default 10000)")
    parser.add_argument("--passes", type=int, default=5, help="steady-state passes measured (default 5)")
    parser.add_argument("--changed", type=int, default=100, help="pools changed before one pass (default 100)")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="time cap per fill (default 180)")
    parser.add_argument(
        "--running-seconds", type=float, default=20.0, help="window measured of the running manager (default 20)"
    )
    parser.add_argument("--profile", action="store_true", help="profile a steady pass even when on target")
    parser.add_argument("--quick", action="store_true", help="a short run: 100 pools, 1,000 VMs, 3 passes")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.pools, args.vms, args.passes = min(args.pools, 100), min(args.vms, 1000), min(args.passes, 3)
        args.changed = min(args.changed, 10)
        args.running_seconds = min(args.running_seconds, 3.0)
    if args.pools < 1 or args.vms < args.pools or args.passes < 1 or not 0 <= args.changed <= args.pools:
        parser.error("--pools and --passes must be at least 1, --vms at least --pools, --changed 0..--pools")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        "manager_scale",
        args,
        lambda: run(args),
        lambda fig, _load: report(fig),
        lambda fig: asdict(fig) | {"verdicts": verdicts(fig)},
    )


if __name__ == "__main__":
    sys.exit(main())

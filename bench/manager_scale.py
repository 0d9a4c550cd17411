"""The pool manager at 1,000 pools / 10,000 VMs, in process, no HTTP (results in BENCHMARKS.md).

Starts a private redis-server (through checkout.py's helpers), builds a ``Manager`` over the real
store and an in-memory ``DummyProvider`` that clones and boots instantly, and measures:

1. filling every pool from empty, with the default ``task_limit`` (10) and with 200 (VMs/s);
2. one full ``run_once()`` pass in steady state (every pool full, nothing changing): wall time,
   CPU time, Redis commands (``INFO commandstats``) and round trips (requests written to a
   connection; a pipeline is one), and the process' RSS.

When the CPU target is missed it profiles one more steady pass (cProfile, top by cumulative time).
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/manager_scale.py [--pools 1000] [--vms 10000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio.connection as redis_connection
from rich.table import Table

from checkout import Children, console, guarded_main, run_async, start_redis, verdict
from vmpooler.config import Settings, parse_settings
from vmpooler.manager.loop import Manager
from vmpooler.providers.dummy import DummyOptions, DummyProvider, Inventory, _Inventory
from vmpooler.states import VMState
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

CPU_TARGET_MS = 200.0
RSS_TARGET_MIB = 150.0
TASK_LIMITS = (10, 200)


# ---- round trips ---------------------------------------------------------------------------------


class RoundTrips:
    """Counts every request redis-py writes to a connection in this process (a pipeline is one)."""

    count = 0

    @classmethod
    def install(cls) -> None:
        original = redis_connection.AbstractConnection.send_packed_command

        async def counted(self: Any, command: Any, check_health: bool = True) -> None:
            cls.count += 1
            await original(self, command, check_health)

        redis_connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


# ---- setup ---------------------------------------------------------------------------------------


def pool_sizes(pools: int, vms: int) -> list[int]:
    """``pools`` sizes summing to ``vms``: 1..(2*avg - 1) in turn, so pools differ in size."""
    average = vms // pools
    sizes = [1 + i % (2 * average - 1) for i in range(pools)] if average >= 2 else [average] * pools
    for i in range(vms - sum(sizes)):  # whatever is left over, one more VM each from the start
        sizes[i % pools] += 1
    return sizes


def settings_for(sizes: Sequence[int], task_limit: int) -> Settings:
    pools = [{"name": f"pool{i:04d}", "template": f"pool{i:04d}", "size": size} for i, size in enumerate(sizes)]
    raw = {"pools": pools, "config": {"task_limit": task_limit}, "providers": {"dummy": {}}}
    settings, _ = parse_settings(raw, env={})
    return settings


class _SharedInventory(_Inventory):
    """The in-memory inventory, read without the deep copy of every pool's VMs the stock one makes."""

    async def read(self) -> Inventory:
        return self._memory  # the readers only look; every change still goes through update()


class LeanDummy(DummyProvider):
    """DummyProvider whose reads cost O(1), not O(all VMs): isolates the manager's own cost."""

    def __init__(self, name: str, options: DummyOptions) -> None:
        super().__init__(name, options)
        self._inventory = _SharedInventory(None)


def manager_for(settings: Settings, store: Store, provider_kind: str) -> Manager:
    options = DummyOptions(filename=None, ready_delay=0, createvm_max_time=0, seed=7)
    provider = LeanDummy("dummy", options) if provider_kind == "lean" else DummyProvider("dummy", options)
    return Manager(settings, store, {"dummy": provider}, ready_poll_interval=0.01)


async def ready_total(store: Store, pools: Sequence[str]) -> int:
    return sum(c[VMState.READY] for c in (await store.counts(list(pools))).values())


def rss_mib() -> tuple[float, float]:
    """(current VmRSS, peak ru_maxrss) of this process in MiB."""
    current = float("nan")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- measurements --------------------------------------------------------------------------------


@dataclass
class Fill:
    task_limit: int
    target: int
    ready: int  # fewer than target when the time cap stopped it
    seconds: float
    passes: int

    @property
    def rate(self) -> float:
        return self.ready / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Pass:
    wall_ms: float
    cpu_ms: float
    commands: int
    round_trips: int
    changed_pools: int
    by_command: Counter[str]


async def fill(
    store: Store, sizes: Sequence[int], task_limit: int, max_seconds: float, provider: str
) -> tuple[Manager, Fill]:
    """From an empty Redis, run passes until every pool is full or ``max_seconds`` have passed."""
    await store.client.flushdb()
    manager = manager_for(settings_for(sizes, task_limit), store, provider)
    await manager.register_pools()
    pools = list(manager.reconcilers)
    target = sum(sizes)
    started = time.perf_counter()
    passes = 0
    while (ready := await ready_total(store, pools)) < target:
        if time.perf_counter() - started > max_seconds:
            break
        await manager.run_once()
        passes += 1
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    for reconciler in manager.reconcilers.values():
        await reconciler.lifecycle.drain(30)
    return manager, Fill(task_limit, target, ready, seconds, passes)


async def command_calls(store: Store) -> Counter[str]:
    """Calls so far of every Redis command but INFO (this benchmark's own), from ``INFO commandstats``."""
    stats = await store.client.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"})


async def steady_pass(manager: Manager, store: Store) -> Pass:
    commands_before = await command_calls(store)
    trips_before = RoundTrips.count
    cpu, wall = time.process_time(), time.perf_counter()
    results = await manager.run_once()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trips = RoundTrips.count - trips_before
    by_command = await command_calls(store) - commands_before
    return Pass(wall * 1000, cpu * 1000, by_command.total(), trips, sum(results.values()), by_command)


async def profile_pass(manager: Manager, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    await manager.run_once()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


@dataclass
class Figures:
    fills: list[Fill]
    passes: list[Pass]
    one_vm_passes: list[Pass]
    rss_mib: float
    peak_rss_mib: float
    profile: str


async def bench(redis_port: int, args: argparse.Namespace) -> Figures:
    store = Store(connect("127.0.0.1", redis_port))
    try:
        figures = await measure(store, args)
        report(figures, args)
        if figures.profile:
            console.print("one steady pass under cProfile, top 15 by cumulative time:")
            console.print(figures.profile, markup=False, highlight=False)
        return figures
    finally:
        await store.close()


async def measure(store: Store, args: argparse.Namespace) -> Figures:
    sizes = pool_sizes(args.pools, args.vms)
    fills = []
    manager = None
    for limit in TASK_LIMITS:
        console.print(f"filling {args.pools} pools / {sum(sizes)} VMs with task_limit {limit} ...")
        cap = args.fill_cap if limit == TASK_LIMITS[0] else args.max_seconds
        manager, result = await fill(store, sizes, limit, cap, args.provider)
        console.print(
            f"  {result.ready} VMs in {result.seconds:.1f}s, {result.rate:,.0f} VMs/s, {result.passes} passes",
            highlight=False,
        )
        fills.append(result)
    if result.ready < result.target:
        raise RuntimeError(f"only {result.ready} of {result.target} VMs ready after {args.max_seconds:.0f}s")
    assert manager is not None
    await manager.run_once()  # warm: the first pass after filling may still settle the last clones
    passes = [await steady_pass(manager, store) for _ in range(args.passes)]
    current, peak = rss_mib()
    profile = ""
    if args.profile or median([p.cpu_ms for p in passes]) > CPU_TARGET_MS:
        profile = await profile_pass(manager, 15)
    # the same pools holding one VM each: what of a pass grows with the number of VMs
    console.print(f"filling {args.pools} pools with 1 VM each, for comparison ...")
    small, _ = await fill(store, [1] * args.pools, TASK_LIMITS[-1], args.max_seconds, args.provider)
    await small.run_once()
    one_vm = [await steady_pass(small, store) for _ in range(args.passes)]
    return Figures(fills, passes, one_vm, current, peak, profile)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report(fig: Figures, args: argparse.Namespace) -> bool:
    fills = Table(title=f"filling {args.pools} pools / {args.vms} VMs from empty (dummy provider, instant)")
    for column in ("task_limit", "VMs ready", "seconds", "VMs/s", "passes", "full fill at that rate"):
        fills.add_column(column, justify="right")
    for f in fig.fills:
        full = f"{f.target / f.rate:.0f} s" if f.rate else "-"
        fills.add_row(str(f.task_limit), str(f.ready), f"{f.seconds:.1f}", f"{f.rate:,.0f}", str(f.passes), full)
    console.print(fills)

    passes = Table(title="steady-state run_once() passes (all full, nothing changing)")
    for column in ("pass", "wall ms", "CPU ms", "Redis commands", "round trips", "pools changed"):
        passes.add_column(column, justify="right")
    passes.add_column("VMs", justify="right")
    rows = [(args.vms, i, p) for i, p in enumerate(fig.passes, 1)]
    rows += [(args.pools, i, p) for i, p in enumerate(fig.one_vm_passes, 1)]
    for vms, i, p in rows:
        figures = (p.wall_ms, p.cpu_ms)
        passes.add_row(
            str(i), *(f"{v:.0f}" for v in figures), str(p.commands), str(p.round_trips), str(p.changed_pools), str(vms)
        )
    console.print(passes)

    cpu = median([p.cpu_ms for p in fig.passes])
    wall = median([p.wall_ms for p in fig.passes])
    commands = median([p.commands for p in fig.passes])
    trips = median([p.round_trips for p in fig.passes])
    console.print(
        f"median pass: wall {wall:.0f} ms, CPU {cpu:.0f} ms, {commands:.0f} commands "
        f"({commands / args.pools:.1f} per pool, {commands / args.vms:.2f} per VM), {trips:.0f} round trips "
        f"({trips / args.pools:.1f} per pool); RSS {fig.rss_mib:.0f} MiB (peak {fig.peak_rss_mib:.0f} MiB)",
        highlight=False,
    )
    cpu_ok = cpu <= CPU_TARGET_MS
    console.print(f"target one pass <= {CPU_TARGET_MS:g} ms CPU: {cpu:.0f} ms {verdict(cpu_ok)}")
    mix = ", ".join(f"{name} {n / args.pools:g}" for name, n in fig.passes[-1].by_command.most_common())
    console.print(f"Redis commands per pool in one pass: {mix}", highlight=False)
    one_cpu = median([p.cpu_ms for p in fig.one_vm_passes])
    one_commands = median([p.commands for p in fig.one_vm_passes])
    one_trips = median([p.round_trips for p in fig.one_vm_passes])
    console.print(
        f"same {args.pools} pools with 1 VM each: CPU {one_cpu:.0f} ms, {one_commands:.0f} commands, "
        f"{one_trips:.0f} round trips per pass",
        highlight=False,
    )
    changed = median([p.changed_pools for p in fig.passes])
    flat = trips <= one_trips * 1.1
    console.print(
        f"target round trips do not grow with VMs: {one_trips:.0f} at {args.pools} VMs, {trips:.0f} at "
        f"{args.vms} VMs {verdict(flat)}",
        highlight=False,
    )
    console.print(
        f"target round trips grow with pools changed: {trips:.0f} ({trips / args.pools:.1f} per pool) with "
        f"{changed:.0f} of {args.pools} pools changed {verdict(trips <= max(changed, 1) * 20)}",
        highlight=False,
    )
    rss_ok = fig.peak_rss_mib <= RSS_TARGET_MIB
    console.print(f"target RSS <= {RSS_TARGET_MIB:g} MiB: {fig.peak_rss_mib:.0f} MiB peak {verdict(rss_ok)}")
    return cpu_ok


def run(args: argparse.Namespace) -> Figures:
    RoundTrips.install()
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        redis_port, _ = start_redis(children, Path(tmp))
        return run_async(bench(redis_port, args))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pools", type=int, default=1000, help="configured pools (default 1000)")
    parser.add_argument("--vms", type=int, default=10000, help="total pool size (default 10000)")
    parser.add_argument("--passes", type=int, default=5, help="steady-state passes measured (default 5)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time cap per full fill (default 120)")
    parser.add_argument(
        "--fill-cap", type=float, default=45.0, help="time cap for the task_limit 10 fill, rate taken over it (45)"
    )
    parser.add_argument(
        "--provider",
        choices=("lean", "stock"),
        default="lean",
        help="lean (default): DummyProvider reading its inventory without a deep copy; stock: as shipped",
    )
    parser.add_argument("--profile", action="store_true", help="profile a steady pass even when on target")
    parser.add_argument("--quick", action="store_true", help="a short run: 100 pools, 1,000 VMs, 3 passes")
    args = parser.parse_args(argv)
    if args.quick:
        args.pools, args.vms, args.passes = min(args.pools, 100), min(args.vms, 1000), min(args.passes, 3)
    if args.pools < 1 or args.vms < args.pools or args.passes < 1:
        parser.error("--pools and --passes must be at least 1, and --vms at least --pools")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return guarded_main(lambda _info: run(args))


if __name__ == "__main__":
    sys.exit(main())

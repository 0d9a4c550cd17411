"""How fast the pool manager fills empty pools, against the bound ``task_limit / clone time`` (results in
BENCHMARKS.md).

Starts a private redis-server and runs ``Manager.run()`` in process, with its production cadence
(per-pool loops, adaptive sleeps, wake-ups on change), over pools that start empty. Every clone of the
dummy provider takes exactly ``--clone-seconds`` and boots at once, so at most ``task_limit`` clones in
flight bound the fill rate to ``task_limit / clone_seconds`` VMs/s. Reports the rate reached, its share
of the bound, and the mean number of clone slots in use (sampled every 50 ms).
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/fill_rate.py [--pools 40] [--per-pool 5] [--task-limit 10] [--clone-seconds 2]
        [--inventory-file] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    parse_with_figures,
    run_async,
    start_redis,
    verdict,
)
from manager_harness import FixedCloneDummy, ready_total, settings_for
from vmpooler.manager.loop import Manager
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

TARGET_SHARE = 0.95  # of the bound
SAMPLE_SECONDS = 0.05


@dataclass
class Fill:
    vms: int
    ready: int  # fewer than vms when the time cap stopped it
    seconds: float  # from the manager's start to the last VM ready
    first_clone_seconds: float  # from the manager's start to the first clone slot taken
    mean_in_flight: float
    task_limit: int
    clone_seconds: float

    @property
    def bound(self) -> float:
        return self.task_limit / self.clone_seconds

    @property
    def rate(self) -> float:
        return self.ready / self.seconds if self.seconds > 0 else 0.0

    @property
    def share(self) -> float:
        return self.rate / self.bound


async def fill(store: Store, args: argparse.Namespace) -> Fill:
    await store.client.flushdb()
    sizes = [args.per_pool] * args.pools
    settings = settings_for(sizes, args.task_limit)
    inventory = args.inventory_dir / "inventory.json" if args.inventory_file else None
    manager = Manager(settings, store, {"dummy": FixedCloneDummy("dummy", args.clone_seconds, inventory)})
    pools, target = list(manager.reconcilers), sum(sizes)
    cap = 3 * target / (args.task_limit / args.clone_seconds) + 30
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(manager.run(stop), name="manager")
    in_flight: list[int] = []
    first_clone = math.nan
    try:
        while (ready := await ready_total(store, pools)) < target and time.perf_counter() - started < cap:
            if running.done():
                running.result()  # the manager stopped by itself: raise what stopped it
                raise RuntimeError("the manager stopped before the pools were full")
            slots = await store.slots.in_flight(time.time())
            if slots and math.isnan(first_clone):
                first_clone = time.perf_counter() - started
            in_flight.append(slots)
            await asyncio.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        await running
    mean = sum(in_flight) / len(in_flight) if in_flight else 0.0
    return Fill(target, ready, seconds, first_clone, mean, args.task_limit, args.clone_seconds)


async def bench(redis_port: int, args: argparse.Namespace) -> Fill:
    store = Store(connect("127.0.0.1", redis_port))
    try:
        return await fill(store, args)
    finally:
        await store.close()


def run(args: argparse.Namespace) -> Fill:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        redis_port, _ = start_redis(children, Path(tmp))
        args.inventory_dir = Path(tmp)
        return run_async(bench(redis_port, args))


def report(f: Fill) -> None:
    console.print(
        f"{f.ready} of {f.vms} VMs ready in {f.seconds:.1f}s: {f.rate:.2f} VMs/s; bound task_limit {f.task_limit} / "
        f"clone {f.clone_seconds:g}s = {f.bound:.2f} VMs/s (a fill no faster than {f.vms / f.bound:.1f}s)",
        highlight=False,
    )
    console.print(
        f"clone slots in use: {f.mean_in_flight:.1f} of {f.task_limit} on average; first clone after "
        f"{f.first_clone_seconds:.2f}s",
        highlight=False,
    )
    console.print(
        f"target fill rate >= {TARGET_SHARE:.0%} of the bound: {f.share:.0%} {verdict(f.share >= TARGET_SHARE)}",
        highlight=False,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--pools", type=int, default=40, help="pools, all empty at the start (default 40)")
    parser.add_argument("--per-pool", type=int, default=5, help="size of each pool (default 5)")
    parser.add_argument("--task-limit", type=int, default=10, help="clones in flight at most (default 10)")
    parser.add_argument("--clone-seconds", type=float, default=2.0, help="each clone's duration (default 2)")
    parser.add_argument(
        "--inventory-file", action="store_true", help="the dummy keeps its inventory in a file (default: in memory)"
    )
    parser.add_argument("--quick", action="store_true", help="a short run: 10 pools of 4, 0.5 s clones")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.pools, args.per_pool = min(args.pools, 10), min(args.per_pool, 4)
        args.clone_seconds = min(args.clone_seconds, 0.5)
    if min(args.pools, args.per_pool, args.task_limit) < 1 or args.clone_seconds <= 0:
        parser.error("--pools, --per-pool and --task-limit must be at least 1, --clone-seconds positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main(
        "fill_rate",
        args,
        lambda: run(args),
        lambda result, _load: report(result),
        lambda result: asdict(result) | {"bound": result.bound, "rate": result.rate, "share": result.share},
    )


if __name__ == "__main__":
    sys.exit(main())

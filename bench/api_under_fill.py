"""API latency while the pool manager fills 5,000 VMs, against a real ``vmpooler serve`` (results in
BENCHMARKS.md).

Starts a private redis-server and ``vmpooler serve`` (API and manager in one process; ``--split`` runs
``vmpooler api`` and ``vmpooler manager`` as two processes instead) with the dummy provider cloning and
booting instantly, and pools totalling 5,000 VMs that start empty. As soon as the API answers, 32
clients each loop: ``GET /api/v3/status``, then, while the checkout pace allows (``--checkouts``, 20/s
in all by default), ``POST /api/v3/vm/<pool>`` (pools in turn) and, when that gave a VM,
``DELETE /api/v3/vm/<name>``. Every request is timed. The pace keeps the checkouts below the fill rate:
32 clients checking out as fast as they can would take every VM as it became ready, and nearly every
checkout would be a cheap ``503`` instead of a real one.

The fill is over when the manager has made 5,000 VMs ready: those ready now plus those the clients have
checked out (the returned ones are the manager's to replace, like any other gap). The same load then
runs ``--after`` seconds more, for comparison with a manager that only replaces returned VMs.
A ``503`` to a checkout (the pool empty, early in the fill) is counted apart, not as an error.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/api_under_fill.py [--pools 100] [--per-pool 50] [--after 5] [--split] [--quick]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from checkout import hostname_in
from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    verdict,
    write_config,
)
from loadgen import RawConnection, Recorder, Summary
from vmpooler.states import VMState
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

CONCURRENCY = 32
P99_TARGET_MS = 25.0
ROUTES = ("status", "checkout", "return")
POLL_SECONDS = 0.25


def pool_name(i: int) -> str:
    return f"fill{i:03d}"


@dataclass
class Phase:
    """What the clients saw in one phase, by route."""

    recorders: dict[str, Recorder] = field(default_factory=lambda: {route: Recorder() for route in ROUTES})
    empty_pool: int = 0  # checkouts answered 503: nothing ready in that pool yet
    checked_out: int = 0

    def summaries(self, seconds: float) -> dict[str, Summary]:
        every = [v for recorder in self.recorders.values() for v in recorder.latencies]
        errors = sum((recorder.errors for recorder in self.recorders.values()), start=Counter[str]())
        found = {"all": Summary.of(every, seconds, errors)}
        return found | {route: Summary.of(r.latencies, seconds, r.errors) for route, r in self.recorders.items()}


class Load:
    """32 clients looping status and, at a set pace, checkout and return; ``phase`` says where their
    figures go."""

    def __init__(self, url: str, pools: Sequence[str], checkouts_per_second: float) -> None:
        self.url = url
        self.pools = itertools.cycle(pools)
        self.interval = 1 / checkouts_per_second
        self.next_checkout = time.monotonic()
        self.phase = Phase()
        self.checkouts = 0  # every checkout that gave a VM, all phases
        self.stop = asyncio.Event()

    async def client(self) -> None:
        conn = RawConnection.to(self.url)
        try:
            while not self.stop.is_set():
                await self.one_round(conn)
        finally:
            await conn.close()

    async def one_round(self, conn: RawConnection) -> None:
        phase = self.phase  # a round counts wholly in the phase it started in
        reply = await phase.recorders["status"].timed(lambda: conn.request("GET", "/api/v3/status"))
        if reply is not None and reply[0] != 200:
            phase.recorders["status"].error(f"HTTP {reply[0]}", reply[1].decode(errors="replace"))
        now = time.monotonic()
        if now < self.next_checkout:
            return
        # a client that was late does not earn a burst of checkouts
        self.next_checkout = max(self.next_checkout, now - self.interval) + self.interval
        pool = next(self.pools)
        reply = await phase.recorders["checkout"].timed(lambda: conn.request("POST", f"/api/v3/vm/{pool}"))
        if reply is None:
            return
        name = hostname_in(reply[1], pool) if reply[0] == 200 else ""
        if reply[0] == 503:
            phase.empty_pool += 1
            return
        if not name:
            phase.recorders["checkout"].error(f"HTTP {reply[0]}", reply[1].decode(errors="replace"))
            return
        self.checkouts += 1
        phase.checked_out += 1
        reply = await phase.recorders["return"].timed(lambda: conn.request("DELETE", f"/api/v3/vm/{name}"))
        if reply is not None and reply[0] != 200:
            phase.recorders["return"].error(f"HTTP {reply[0]}", reply[1].decode(errors="replace"))


@dataclass
class Figures:
    vms: int
    made: int  # VMs the manager had made ready when the fill phase ended
    fill_seconds: float
    during: dict[str, Summary]
    after: dict[str, Summary]
    during_empty_pool: int
    after_empty_pool: int
    during_checkouts: int
    after_checkouts: int
    mode: str


async def made_ready(store: Store, pools: Sequence[str], load: Load) -> int:
    counts = await store.counts(list(pools))
    return sum(c[VMState.READY] for c in counts.values()) + load.checkouts


async def drive(url: str, redis_port: int, pools: Sequence[str], vms: int, args: argparse.Namespace) -> Figures:
    store = Store(connect("127.0.0.1", redis_port))
    load = Load(url, pools, args.checkouts)
    clients = [asyncio.create_task(load.client()) for _ in range(CONCURRENCY)]
    try:
        started = time.perf_counter()
        while True:
            made = await made_ready(store, pools, load)
            if made >= vms or time.perf_counter() - started > args.cap:
                break
            await asyncio.sleep(POLL_SECONDS)
        fill_seconds = time.perf_counter() - started
        during, load.phase = load.phase, Phase()
        console.print(f"fill: {made} of {vms} VMs made in {fill_seconds:.1f}s; {args.after:g}s more ...")
        await asyncio.sleep(args.after)
        after = load.phase
        load.stop.set()
        await asyncio.gather(*clients)
    finally:
        load.stop.set()
        for task in clients:
            task.cancel()
        await store.close()
    return Figures(
        vms,
        made,
        fill_seconds,
        during.summaries(fill_seconds),
        after.summaries(args.after),
        during.empty_pool,
        after.empty_pool,
        during.checked_out,
        after.checked_out,
        "api + manager processes" if args.split else "vmpooler serve",
    )


def run(args: argparse.Namespace) -> Figures:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, _ = start_redis(children, workdir)
        pools = [pool_name(i) for i in range(args.pools)]
        providers = {"dummy": {"ready_delay": 0, "createvm_max_time": 0, "destroyvm_max_time": 0}}
        config = write_config(
            workdir / "fill.yaml", redis_port, [(p, args.per_pool) for p in pools], providers=providers
        )
        url, _ = start_vmpooler(children, "api" if args.split else "serve", config, workdir)
        if args.split:  # after the API answers, so that the whole fill is under load
            script = Path(sys.executable).parent / "vmpooler"
            args_manager = [str(script), "manager", "-c", str(config), "--state-dir", str(workdir / "state")]
            children.start(args_manager, workdir / "manager.log")
        return run_async(drive(url, redis_port, pools, args.pools * args.per_pool, args))


def report(fig: Figures) -> None:
    title = f"{fig.mode}: {CONCURRENCY} clients while the manager fills {fig.vms} VMs, latency in ms"
    table = Table(title=title)
    for column in ("phase", "route", "requests", "req/s", "p50", "p90", "p99", "max", "errors"):
        table.add_column(column, justify="left" if column in ("phase", "route") else "right")
    for phase, summaries in (("during fill", fig.during), ("after fill", fig.after)):
        for route, s in summaries.items():
            table.add_row(
                phase,
                route,
                str(s.requests),
                f"{s.throughput:,.0f}",
                *(f"{v:.2f}" for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms)),
                str(sum(s.errors.values())) + (f" {s.errors}" if s.errors else ""),
            )
    console.print(table)
    console.print(
        f"fill: {fig.made} of {fig.vms} VMs made ready in {fig.fill_seconds:.1f}s ({fig.made / fig.fill_seconds:,.0f}"
        f" VMs/s); checkouts {fig.during_checkouts} during, {fig.after_checkouts} after; answered 503 (pool empty) "
        f"{fig.during_empty_pool} during, {fig.after_empty_pool} after",
        highlight=False,
    )
    p99 = fig.during["all"].p99_ms
    console.print(
        f"target API p99 <= {P99_TARGET_MS:g} ms while the manager fills {fig.vms} VMs: {p99:.2f} ms "
        f"{verdict(p99 <= P99_TARGET_MS and fig.made >= fig.vms)}"
        + ("" if fig.made >= fig.vms else " (the fill did not finish within the cap)"),
        highlight=False,
    )


def figures(fig: Figures) -> dict[str, Any]:
    plain = {k: v for k, v in vars(fig).items() if k not in ("during", "after")}
    return plain | {
        "during": {route: s.as_dict() for route, s in fig.during.items()},
        "after": {route: s.as_dict() for route, s in fig.after.items()},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--pools", type=int, default=100, help="pools (default 100)")
    parser.add_argument("--per-pool", type=int, default=50, help="size of each (default 50: 5,000 VMs)")
    parser.add_argument("--checkouts", type=float, default=20.0, help="checkouts per second in all (default 20)")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after the fill (default 5)")
    parser.add_argument("--cap", type=float, default=240.0, help="longest fill phase in seconds (default 240)")
    parser.add_argument("--split", action="store_true", help="API and manager in two processes, not serve")
    parser.add_argument("--quick", action="store_true", help="a short run: 20 pools of 25, 1 s after")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.pools, args.per_pool = min(args.pools, 20), min(args.per_pool, 25)
        args.after, args.cap = min(args.after, 1.0), min(args.cap, 60.0)
    if min(args.pools, args.per_pool, args.checkouts, args.after, args.cap) <= 0:
        parser.error("--pools, --per-pool, --checkouts, --after and --cap must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("api_under_fill", args, lambda: run(args), lambda fig, _load: report(fig), figures)


if __name__ == "__main__":
    sys.exit(main())

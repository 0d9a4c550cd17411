"""The floors a checkout is measured against, on the same redis-server and the same ``vmpooler api``
process, and the checkout's ratio to them (results in BENCHMARKS.md).

At each concurrency, for the same number of seconds and in this order:

1. a bare ``EVALSHA`` of ``return 1`` through redis-py's asyncio client made by ``connect()``, the
   service's own client settings (blocking pool of 64 connections, retry, timeouts), C tasks sharing it;
2. ``GET /api/v3/vm`` with checkout.py's load generator: the API has no route that does nothing, and
   this is the closest. It lists the configured pool names (one pool here) with no Redis call, through
   the same middleware, router, dependency and JSON reply as any route;
3. the checkout itself, ``POST /api/v3/vm/bench`` with the VM put straight back (as checkout.py).

A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/floors.py [--seconds 3] [--concurrency 1,8,32,64] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from checkout import CONCURRENCY, POOL, Servers, drive, fill, open_clients
from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    numbers,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    write_config,
)
from loadgen import Budget, Recorder, Summary
from loadgen import measure as measure_http
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

POOL_SIZE = 1000  # large enough that 64 clients never find it empty (a 503 would flatter the checkout)
NOOP_PATH = "/api/v3/vm"
PHASES = ("evalsha", "noop_http", "checkout")


async def evalsha_floor(redis_port: int, concurrency: int, seconds: float, warmup: float) -> Summary:
    """``concurrency`` tasks sharing one service-configured client, each looping a no-op script."""
    client = connect("127.0.0.1", redis_port)
    script = client.register_script("return 1")

    async def loop(budget: Budget, recorder: Recorder) -> None:
        while budget.take():
            started = time.perf_counter()
            await script()
            recorder.latencies.append(time.perf_counter() - started)

    try:
        summary = Summary.of([], 0.0)
        for phase_seconds, timed in ((warmup, False), (seconds, True)):
            recorder, budget = Recorder(), Budget(None, phase_seconds)
            started = time.perf_counter()
            await asyncio.gather(*(loop(budget, recorder) for _ in range(concurrency)))
            if timed:
                summary = Summary.of(recorder.latencies, time.perf_counter() - started)
        return summary
    finally:
        await client.aclose(close_connection_pool=True)


async def checkout_phase(servers: Servers, store: Store, concurrency: int, seconds: float, warmup: float) -> Summary:
    async with open_clients("raw", servers.url, concurrency) as posts:
        await drive(posts, store, Budget(None, warmup))
        tally, wall = await drive(posts, store, Budget(None, seconds))
    if tally.duplicates or tally.refill_misses:
        raise RuntimeError(f"a VM was handed out twice: {tally.duplicates[:5]} ({tally.refill_misses} refill misses)")
    return Summary.of(tally.latencies, wall, tally.errors)


@dataclass
class Row:
    """The three figures at one concurrency."""

    concurrency: int
    evalsha: Summary
    noop_http: Summary
    checkout: Summary

    def ratios(self) -> dict[str, float]:
        """The checkout's p50, p99 and throughput over each floor's."""

        def ratio(a: float, b: float) -> float:
            return a / b if b else math.nan

        found: dict[str, float] = {}
        for floor_name in ("noop_http", "evalsha"):
            floor: Summary = getattr(self, floor_name)
            found[f"p50_vs_{floor_name}"] = ratio(self.checkout.p50_ms, floor.p50_ms)
            found[f"p99_vs_{floor_name}"] = ratio(self.checkout.p99_ms, floor.p99_ms)
            found[f"throughput_vs_{floor_name}"] = ratio(self.checkout.throughput, floor.throughput)
        return found


async def bench(servers: Servers, redis_port: int, args: argparse.Namespace) -> list[Row]:
    store = Store(connect("127.0.0.1", redis_port))
    rows = []
    try:
        await fill(store, POOL_SIZE)
        for c in args.concurrency:
            console.print(f"concurrency {c}: EVALSHA, GET {NOOP_PATH}, checkout, {args.seconds:g}s each ...")
            evalsha = await evalsha_floor(redis_port, c, args.seconds, args.warmup)
            noop = await measure_http(servers.url, "GET", NOOP_PATH, c, args.seconds, args.warmup)
            checkout = await checkout_phase(servers, store, c, args.seconds, args.warmup)
            rows.append(Row(c, evalsha, noop, checkout))
    finally:
        await store.close()
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        config = write_config(workdir / "floors.yaml", redis_port, [(POOL, POOL_SIZE)])
        url, api = start_vmpooler(children, "api", config, workdir)
        return run_async(bench(Servers(url, api.pid, redis_pid), redis_port, args))


def report(rows: Sequence[Row]) -> None:
    table = Table(title=f"floors and checkout on one redis-server and one API ({POOL_SIZE}-VM pool), ms")
    for column in ("conc.", "what", "req/s", "p50", "p90", "p99", "max", "errors"):
        table.add_column(column, justify="left" if column == "what" else "right")
    names = {"evalsha": "EVALSHA (redis-py)", "noop_http": f"GET {NOOP_PATH}", "checkout": f"POST /api/v3/vm/{POOL}"}
    for row in rows:
        for phase in PHASES:
            s: Summary = getattr(row, phase)
            table.add_row(
                str(row.concurrency),
                names[phase],
                f"{s.throughput:,.0f}",
                *(f"{v:.2f}" for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms)),
                str(sum(s.errors.values())),
            )
    console.print(table)

    ratios = Table(title="checkout / floor")
    for column in ("conc.", "p50 / no-op", "p99 / no-op", "req/s / no-op", "p50 / EVALSHA", "p99 / EVALSHA"):
        ratios.add_column(column, justify="right")
    for row in rows:
        r = row.ratios()
        keys = ("p50_vs_noop_http", "p99_vs_noop_http", "throughput_vs_noop_http", "p50_vs_evalsha", "p99_vs_evalsha")
        ratios.add_row(str(row.concurrency), *(f"{r[k]:.2f}" for k in keys))
    console.print(ratios)
    for row in rows:
        if row.concurrency == 1:
            beyond = row.checkout.p50_ms - row.noop_http.p50_ms - row.evalsha.p50_ms
            console.print(
                f"one at a time, a checkout's p50 beyond a no-op request plus an EVALSHA: {beyond:.3f} ms",
                highlight=False,
            )


def figures(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [
        {"concurrency": row.concurrency, **{p: getattr(row, p).as_dict() for p in PHASES}, "ratios": row.ratios()}
        for row in rows
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per phase (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each (default 0.5)")
    parser.add_argument("--concurrency", type=numbers, default=CONCURRENCY, help="clients (default 1,8,32,64)")
    parser.add_argument("--quick", action="store_true", help="a short run: 0.5 s per phase at 1 and 32")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.seconds, args.warmup, args.concurrency = min(args.seconds, 0.5), min(args.warmup, 0.2), (1, 32)
    if args.seconds <= 0 or args.warmup < 0 or not args.concurrency or min(args.concurrency) < 1:
        parser.error("--seconds must be positive, --warmup at least 0, --concurrency positive numbers")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("floors", args, lambda: run(args), lambda rows, _load: report(rows), figures)


if __name__ == "__main__":
    sys.exit(main())

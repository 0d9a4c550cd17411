"""``GET /api/v3/status`` with 1,000 pools against a real ``vmpooler api`` (results in BENCHMARKS.md).

Starts a private redis-server and the API alone (no manager) on loopback with 1,000 configured pools,
puts a few ready VMs in each, then keeps 32 clients busy for a few seconds, first on a cheap route
(``GET /api/v3/vm``: the pool names from the config, no Redis call) as the floor, then on
``/api/v3/status``, then ``/api/v3/status`` one request at a time (its latency without queueing).
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/status.py [--pools 1000] [--seconds 5] [--single-seconds 2] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    cpu_seconds,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    verdict,
    write_config,
)
from loadgen import Budget, Summary, hold
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

CONCURRENCY = 32
P99_TARGET_MS = 20.0
STATUS_PATH = "/api/v3/status"
FLOOR_PATH = "/api/v3/vm"


def pool_name(i: int) -> str:
    return f"pool{i:04d}"


async def fill(store: Store, pools: int, per_pool: int) -> None:
    """``per_pool`` ready VMs in every pool, made through the store as the manager makes them."""
    await store.client.flushdb()

    async def add(pool: str, name: str) -> None:
        if not (await store.create_pending(pool, name, {}) and await store.mark_ready(pool, name, time.time(), 0.0)):
            raise RuntimeError(f"could not make {name} ready")

    work = [(pool_name(i), f"{pool_name(i)}-{j}") for i in range(pools) for j in range(per_pool)]
    for start in range(0, len(work), 64):  # as many at once as the client has connections
        await asyncio.gather(*(add(pool, name) for pool, name in work[start : start + 64]))


@dataclass
class Result:
    path: str
    concurrency: int
    summary: Summary
    api_cpu_us: float  # per request
    redis_cpu_us: float


async def measure(
    url: str, path: str, concurrency: int, seconds: float, pids: tuple[int, int], args: argparse.Namespace
) -> Result:
    await hold(url, "GET", path, concurrency, Budget(None, args.warmup))
    before = [cpu_seconds(pid) for pid in pids]
    recorder, wall = await hold(url, "GET", path, concurrency, Budget(None, seconds))
    after = [cpu_seconds(pid) for pid in pids]
    summary = Summary.of(recorder.latencies, wall, recorder.errors)
    n = summary.requests
    api_cpu, redis_cpu = ((a - b) * 1e6 / n if n else float("nan") for a, b in zip(after, before, strict=True))
    return Result(path, concurrency, summary, api_cpu, redis_cpu)


async def bench(url: str, redis_port: int, pids: tuple[int, int], args: argparse.Namespace) -> list[Result]:
    store = Store(connect("127.0.0.1", redis_port))
    try:
        started = time.perf_counter()
        await fill(store, args.pools, args.per_pool)
        console.print(f"filled {args.pools} pools x {args.per_pool} ready VMs in {time.perf_counter() - started:.1f}s")
    finally:
        await store.close()
    results = []
    for path, concurrency, seconds in (
        (FLOOR_PATH, CONCURRENCY, args.seconds),
        (STATUS_PATH, CONCURRENCY, args.seconds),
        (STATUS_PATH, 1, args.single_seconds),  # one at a time: the latency without queueing
    ):
        console.print(f"GET {path}: concurrency {concurrency} for {seconds:g}s ...", highlight=False)
        results.append(await measure(url, path, concurrency, seconds, pids, args))
    return results


def run(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        pools = [(pool_name(i), args.per_pool) for i in range(args.pools)]
        config = write_config(workdir / "status.yaml", redis_port, pools)
        url, api = start_vmpooler(children, "api", config, workdir)
        return run_async(bench(url, redis_port, (api.pid, redis_pid), args))


def report(results: list[Result], args: argparse.Namespace) -> None:
    table = Table(title=f"{args.pools} pools x {args.per_pool} ready VMs, latency in ms")
    columns = ("route", "conc.", "requests", "req/s", "p50", "p90", "p99", "max", "API CPU µs/req", "redis µs/req")
    for column in (*columns, "errors"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for r in results:
        s = r.summary
        table.add_row(
            f"GET {r.path}",
            str(r.concurrency),
            str(s.requests),
            f"{s.throughput:,.0f}",
            *(f"{v:.2f}" for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms)),
            *(f"{v:.0f}" for v in (r.api_cpu_us, r.redis_cpu_us)),
            str(sum(s.errors.values())) + (f" {s.errors}" if s.errors else ""),
        )
    console.print(table)
    floor, status, single = (r.summary for r in results)
    console.print(
        f"status p99 / floor p99: {status.p99_ms / floor.p99_ms:.2f}x; "
        f"status p50 - floor p50: {status.p50_ms - floor.p50_ms:.2f} ms",
        highlight=False,
    )
    console.print(
        f"target p99 <= {P99_TARGET_MS:g} ms for GET {STATUS_PATH} at {args.pools} pools, concurrency {CONCURRENCY}: "
        f"{status.p99_ms:.2f} ms {verdict(status.p99_ms <= P99_TARGET_MS)} "
        f"(one at a time: p99 {single.p99_ms:.2f} ms {verdict(single.p99_ms <= P99_TARGET_MS)})",
        highlight=False,
    )


def figures(results: Sequence[Result]) -> list[dict[str, Any]]:
    return [
        {"path": r.path, "concurrency": r.concurrency, **r.summary.as_dict(), "api_cpu_us": r.api_cpu_us,
         "redis_cpu_us": r.redis_cpu_us}
        for r in results
    ]  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--pools", type=int, default=1000, help="configured pools (default 1000)")
    parser.add_argument("--per-pool", type=int, default=3, help="ready VMs in each pool (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds at concurrency 32 (default 5)")
    parser.add_argument("--single-seconds", type=float, default=2.0, help="timed seconds one at a time (default 2)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="a short run: 1 s per phase, 0.5 s one at a time")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.seconds, args.single_seconds, args.warmup = min(args.seconds, 1.0), min(args.single_seconds, 0.5), 0.2
    if args.seconds <= 0 or args.single_seconds <= 0 or args.warmup < 0 or args.pools < 1 or args.per_pool < 0:
        parser.error("--seconds and --pools must be positive, --warmup and --per-pool at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("status", args, lambda: run(args), lambda results, _load: report(results, args), figures)


if __name__ == "__main__":
    sys.exit(main())

"""``GET /api/v3/status`` with 1,000 pools against a real ``vmpooler api`` (results in BENCHMARKS.md).

Starts a private redis-server and the API alone (no manager) on loopback with 1,000 configured pools,
puts a few ready VMs in each, then has 32 clients issue a fixed number of requests, first to a cheap
route (``GET /api/v3/vm``: the pool names from the config, no Redis call) as the floor, then to
``/api/v3/status``, then ``/api/v3/status`` one request at a time (its latency without queueing).
Reuses the process guard, Redis/API helpers and raw HTTP client of checkout.py.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/status.py [--pools 1000] [--requests 2000] [--single 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from checkout import (
    Children,
    RawConnection,
    Tickets,
    console,
    cpu_seconds,
    guarded_main,
    percentile,
    run_async,
    start_redis,
    verdict,
    wait_until_up,
)
from vmpooler.store.connection import connect
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

CONCURRENCY = 32
P99_TARGET_MS = 20.0
STATUS_PATH = "/api/v3/status"
FLOOR_PATH = "/api/v3/vm"
REQUEST_TIMEOUT = 10.0


class GetConnection(RawConnection):
    """checkout.py's keep-alive HTTP/1.1 client, sending ``GET path`` instead of ``POST path``."""

    def __init__(self, host: str, port: int, path: str) -> None:
        super().__init__(host, port, path)
        self._request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


def pool_name(i: int) -> str:
    return f"pool{i:04d}"


def start_api(children: Children, workdir: Path, redis_port: int, pools: int) -> tuple[str, int]:
    """``vmpooler api`` (never the manager) with ``pools`` pools of 3; returns (base URL, pid)."""
    script = Path(sys.executable).parent / "vmpooler"
    if not script.exists():
        raise RuntimeError(f"no {script}: run `make install` first")
    lines = [f":redis:\n  server: 127.0.0.1\n  port: {redis_port}\n:config:\n  site_name: bench\n:pools:\n"]
    lines += [f"  - name: {pool_name(i)}\n    template: {pool_name(i)}\n    size: 3\n" for i in range(pools)]
    config = workdir / "vmpooler.yaml"
    config.write_text("".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "VMPOOLER_"))}
    port = free_port()
    args = [str(script), "api", "-c", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--state-dir", str(workdir / "state")]
    log = workdir / "api.log"
    proc = children.start(args, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, log, f"{url}{FLOOR_PATH}", timeout=60.0)
    return url, proc.pid


async def fill(store: Store, pools: int, per_pool: int) -> None:
    """``per_pool`` ready VMs in every pool, made through the store as the manager makes them."""
    await store.client.flushdb()

    async def add(pool: str, name: str) -> None:
        if not (await store.create_pending(pool, name, {}) and await store.mark_ready(pool, name, time.time(), 0.0)):
            raise RuntimeError(f"could not make {name} ready")

    work = [(pool_name(i), f"{pool_name(i)}-{j}") for i in range(pools) for j in range(per_pool)]
    for start in range(0, len(work), 32):  # the store's client holds 64 connections
        await asyncio.gather(*(add(pool, name) for pool, name in work[start : start + 32]))


@dataclass
class Result:
    path: str
    concurrency: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    api_cpu_us: float  # per request
    redis_cpu_us: float
    body_bytes: int
    errors: dict[str, int]


async def drive(
    url: str, path: str, concurrency: int, requests: int, seconds: float
) -> tuple[list[float], Counter[str], int, float]:
    host, port = url.removeprefix("http://").split(":")
    conns = [GetConnection(host, int(port), path) for _ in range(concurrency)]
    tickets = Tickets(requests, seconds)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    body_size = 0

    async def client(conn: GetConnection) -> None:
        nonlocal body_size
        while tickets.take():
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    status, body = await conn.post()
            except (OSError, TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError) as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors[f"HTTP {status}"] += 1
            body_size = len(body)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    return latencies, errors, body_size, time.perf_counter() - started


async def measure(
    url: str, path: str, concurrency: int, requests: int, pids: tuple[int, int], args: argparse.Namespace
) -> Result:
    await drive(url, path, concurrency, args.warmup, args.max_seconds)
    before = [cpu_seconds(pid) for pid in pids]
    latencies, errors, body_size, seconds = await drive(url, path, concurrency, requests, args.max_seconds)
    after = [cpu_seconds(pid) for pid in pids]
    ms = sorted(v * 1000 for v in latencies)
    n = len(ms)
    api_cpu, redis_cpu = ((a - b) * 1e6 / n if n else float("nan") for a, b in zip(after, before, strict=True))
    return Result(
        path=path,
        concurrency=concurrency,
        requests=n,
        seconds=seconds,
        throughput=n / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else float("nan"),
        api_cpu_us=api_cpu,
        redis_cpu_us=redis_cpu,
        body_bytes=body_size,
        errors=dict(errors),
    )


async def bench(url: str, redis_port: int, pids: tuple[int, int], args: argparse.Namespace) -> list[Result]:
    store = Store(connect("127.0.0.1", redis_port))
    try:
        started = time.perf_counter()
        await fill(store, args.pools, args.per_pool)
        console.print(f"filled {args.pools} pools x {args.per_pool} ready VMs in {time.perf_counter() - started:.1f}s")
    finally:
        await store.close()
    results = []
    for path, concurrency, requests in (
        (FLOOR_PATH, CONCURRENCY, args.requests),
        (STATUS_PATH, CONCURRENCY, args.requests),
        (STATUS_PATH, 1, args.single),  # one at a time: the latency without queueing
    ):
        console.print(f"GET {path}: {args.warmup} warm-up, {requests} timed, concurrency {concurrency}")
        results.append(await measure(url, path, concurrency, requests, pids, args))
    return results


def run(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        url, api_pid = start_api(children, workdir, redis_port, args.pools)
        return run_async(bench(url, redis_port, (api_pid, redis_pid), args))


def report(results: list[Result], args: argparse.Namespace) -> None:
    table = Table(title=f"{args.pools} pools x {args.per_pool} ready VMs, latency in ms")
    columns = ("route", "conc.", "requests", "req/s", "p50", "p90", "p99", "max", "API CPU µs/req", "redis µs/req")
    for column in (*columns, "body bytes", "errors"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for r in results:
        table.add_row(
            f"GET {r.path}",
            str(r.concurrency),
            str(r.requests),
            f"{r.throughput:,.0f}",
            *(f"{v:.2f}" for v in (r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms)),
            *(f"{v:.0f}" for v in (r.api_cpu_us, r.redis_cpu_us)),
            f"{r.body_bytes:,}",
            str(sum(r.errors.values())) + (f" {r.errors}" if r.errors else ""),
        )
    console.print(table)
    floor, status, single = results
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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pools", type=int, default=1000, help="configured pools (default 1000)")
    parser.add_argument("--per-pool", type=int, default=3, help="ready VMs in each pool (default 3)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per route (default 2000)")
    parser.add_argument("--single", type=int, default=200, help="timed requests one at a time (default 200)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests before each (default 100)")
    parser.add_argument("--max-seconds", type=float, default=90.0, help="time cap per phase (default 90)")
    parser.add_argument("--quick", action="store_true", help="a short run: 300 requests, 50 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.single = min(args.requests, 300), min(args.warmup, 50), min(args.single, 50)
    if args.requests < 1 or args.single < 1 or args.warmup < 0 or args.pools < 1 or args.per_pool < 0:
        parser.error("--requests, --single and --pools must be at least 1, --warmup and --per-pool at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return guarded_main(lambda _info: report(run(args), args))


if __name__ == "__main__":
    sys.exit(main())

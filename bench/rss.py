"""Resident memory of a real ``vmpooler api`` process at rest (results in BENCHMARKS.md).

Starts a private redis-server and ``vmpooler api`` with a small configuration (3 pools), sends a few
requests of each common kind (list, status, checkout, query, return, healthcheck), lets it idle 2 s and
reads ``VmRSS`` (resident now) and ``VmHWM`` (its peak) from ``/proc/<pid>/status``. Then the same with
1,000 configured pools, for reference. The manager's memory at 1,000 pools / 10,000 VMs is measured by
manager_scale.py. A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/rss.py [--idle 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from checkout import hostname_in
from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    memory_mib,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    verdict,
    write_config,
)
from loadgen import RawConnection
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

RSS_TARGET_MIB = 80.0
CONFIGS = {"3 pools": 3, "1,000 pools": 1000}
ROUNDS = 20


def pool_name(i: int) -> str:
    return f"pool{i:04d}"


async def exercise(url: str, redis_port: int, pools: int) -> int:
    """``ROUNDS`` rounds of the common requests; returns how many answered 2xx."""
    store = Store(connect("127.0.0.1", redis_port))
    conn = RawConnection.to(url)
    answered = 0
    try:
        await store.client.flushdb()
        for i in range(ROUNDS):  # one ready VM per round to check out
            pool = pool_name(i % pools)
            await store.create_pending(pool, f"{pool}-{i}", {})
            await store.mark_ready(pool, f"{pool}-{i}", time.time(), 0.0)
        for i in range(ROUNDS):
            pool = pool_name(i % pools)
            for method, path in (("GET", "/api/v3/vm"), ("GET", "/api/v3/status"), ("POST", f"/api/v3/vm/{pool}")):
                status, body = await conn.request(method, path)
                answered += 200 <= status < 300
            name = hostname_in(body, pool)
            for method, path in (("GET", f"/api/v3/vm/{name}"), ("DELETE", f"/api/v3/vm/{name}")):
                status, _ = await conn.request(method, path)
                answered += 200 <= status < 300
            await conn.request("GET", "/healthcheck")  # 503 without a manager: still a full request
    finally:
        await conn.close()
        await store.close()
    return answered


def measure(children: Children, workdir: Path, redis_port: int, pools: int, idle: float) -> dict[str, Any]:
    config = write_config(workdir / f"rss-{pools}.yaml", redis_port, [(pool_name(i), 1) for i in range(pools)])
    url, api = start_vmpooler(children, "api", config, workdir)
    started = memory_mib(api.pid)
    answered = run_async(exercise(url, redis_port, pools))
    time.sleep(idle)
    rest = memory_mib(api.pid)
    Children.stop(api)
    return {"pools": pools, "answered": answered, "after_start_mib": started["rss_mib"]} | rest


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    configs = dict(list(CONFIGS.items())[:1]) if args.quick else CONFIGS
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, _ = start_redis(children, workdir)
        return {label: measure(children, workdir, redis_port, pools, args.idle) for label, pools in configs.items()}


def report(results: dict[str, dict[str, Any]]) -> None:
    table = Table(title="vmpooler api resident memory (MiB)")
    for column in ("configuration", "after start", "at rest (VmRSS)", "peak (VmHWM)", "2xx answers"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for label, r in results.items():
        figures = (r["after_start_mib"], r["rss_mib"], r["hwm_mib"])
        table.add_row(label, *(f"{v:.1f}" for v in figures), f"{r['answered']} of {ROUNDS * 5}")
    console.print(table)
    small = next(iter(results.values()))
    console.print(
        f"target API RSS at rest <= {RSS_TARGET_MIB:g} MiB: {small['rss_mib']:.1f} MiB "
        f"{verdict(small['rss_mib'] <= RSS_TARGET_MIB)}",
        highlight=False,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before reading (default 2)")
    parser.add_argument("--quick", action="store_true", help="only the small configuration (the target's)")
    args = parse_with_figures(parser, argv)
    if args.idle < 0:
        parser.error("--idle must be at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("rss", args, lambda: run(args), lambda results, _load: report(results))


if __name__ == "__main__":
    sys.exit(main())

"""What one look of a waiting checkout costs Redis: the fair pass over a pool's whole queue (docs/waiting.md),
timed for queues of several lengths and owners, with a few ready VMs that serve nobody (the common case: a
waiter looks and is told its place). It bounds ``MAX_WAITING_PER_POOL``: every waiter looks on each wake-up
and at least once a second, so a queue of N costs about N looks of this price per second.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/wait_take.py [--looks 200] [--json FILE]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from common import Children, argument_parser, benchmark_main, console, parse_with_figures, run_async, start_redis
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store
from vmpooler.store.waiting import NotServedYet, WaitTicket

POOL = "bench"
QUEUES = (10, 50, 250, 1000)
OWNERS = 10


async def measure(port: int, looks: int) -> list[dict[str, Any]]:
    store = Store(connect("127.0.0.1", port, socket_timeout=10.0))
    rows = []
    try:
        for waiting in QUEUES:
            await store.client.flushall()
            now = time.time()
            tickets = [WaitTicket(f"w{n}", POOL, f"owner{n % OWNERS}", "", 1.0, 2) for n in range(waiting)]
            for ticket in tickets:
                assert await store.queues.join(ticket, now, now + 3600, 10_000)
            # one ready VM: every head is given at most one of the two it asks for, so nobody is served
            assert await store.create_pending(POOL, "vm-1", {})
            assert await store.mark_ready(POOL, "vm-1", now, 1.0)
            last = tickets[-1]
            seconds = []
            for _ in range(looks):
                via = store.queues.take_via(last, time.time(), now + 3600, None, lambda r: RuntimeError(str(r)))
                started = time.perf_counter()
                try:
                    await store.checkout([[POOL], [POOL]], time.time(), via=via)
                except NotServedYet:
                    pass
                seconds.append(time.perf_counter() - started)
            seconds.sort()
            rows.append(
                {
                    "waiting": waiting,
                    "median_ms": round(1000 * statistics.median(seconds), 3),
                    "p99_ms": round(1000 * seconds[int(0.99 * (len(seconds) - 1))], 3),
                    "redis_ms_per_second": round(1000 * statistics.median(seconds) * waiting, 1),
                }
            )
    finally:
        await store.close()
    return rows


def run(looks: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, Children() as children:
        port, _ = start_redis(children, Path(tmp))
        return run_async(measure(port, looks))


def report(rows: list[dict[str, Any]], load: float) -> None:
    table = Table(title=f"one waiter's look (load before: {load:.2f})")
    for column in ("waiting", "median ms", "p99 ms", "Redis ms per second (all waiters look once)"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(row[k]) for k in ("waiting", "median_ms", "p99_ms", "redis_ms_per_second")))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--looks", type=int, default=200, help="looks timed per queue length")
    args = parse_with_figures(parser, argv)
    return benchmark_main("wait_take", args, lambda: run(args.looks), report)


if __name__ == "__main__":
    raise SystemExit(main())

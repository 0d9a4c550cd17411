"""How long the ``vmpooler`` command takes to start: ``vmpooler --help``, and ``vmpooler get`` against a
real ``vmpooler api`` (results in BENCHMARKS.md; issue 17's target: ≤ 0.3 s each).

Runs the installed command ``--rounds`` times per case, after one warm-up run that writes the bytecode
caches (as any second run on a user's machine has them), and records the median wall time and the median
CPU time (user + system) of each run. Start-up is one thread importing modules, so on an idle machine
the wall time is about the CPU time; on a loaded one (other jobs sharing the CPUs) the wall time grows
and the CPU time does not, so the target is judged on the CPU time and the wall time is shown beside it.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/cli_startup.py [--rounds 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

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
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

TARGET_SECONDS = 0.3
POOL = "bench"


def timed(args: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``args``, which must succeed."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    # RUSAGE_CHILDREN counts the children waited for: only this run between the two readings
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


async def fill(redis_port: int, count: int) -> None:
    store = Store(connect("127.0.0.1", redis_port))
    try:
        for i in range(count):
            await store.create_pending(POOL, f"{POOL}-{i}", {})
            await store.mark_ready(POOL, f"{POOL}-{i}", time.time(), 0.0)
    finally:
        await store.close()


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    script = str(Path(sys.executable).parent / "vmpooler")
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, _ = start_redis(children, workdir)
        url, _api = start_vmpooler(
            children, "api", write_config(workdir / "cli.yaml", redis_port, [(POOL, 0)]), workdir
        )
        run_async(fill(redis_port, args.rounds + 1))
        # a user's environment: bytecode cached after the first run, no config file of ours or vmfloaty's
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VMPOOLER_", "PYTHONDONTWRITEBYTECODE"))}
        env |= {"HOME": str(workdir), "VMPOOLER_URL": url}
        cases = {"vmpooler --help": [script, "--help"], f"vmpooler get {POOL}": [script, "get", POOL, "--json"]}
        results = {}
        for label, command in cases.items():
            timed(command, env)  # warm-up: writes the bytecode caches
            runs = [timed(command, env) for _ in range(args.rounds)]
            walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
            results[label] = {
                "rounds": args.rounds,
                "wall_median_s": statistics.median(walls),
                "wall_min_s": min(walls),
                "cpu_median_s": statistics.median(cpus),
                "ok": statistics.median(cpus) <= TARGET_SECONDS,
            }
        return results


def report(results: dict[str, dict[str, Any]], load: float) -> None:
    table = Table(title=f"vmpooler command start-up (load {load:.2f} on {os.cpu_count()} CPUs)")
    for column in ("command", "CPU median (s)", "wall median (s)", "wall min (s)", f"CPU ≤ {TARGET_SECONDS:g} s"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for label, r in results.items():
        cells = (f"{r['cpu_median_s']:.3f}", f"{r['wall_median_s']:.3f}", f"{r['wall_min_s']:.3f}")
        table.add_row(label, *cells, verdict(r["ok"]))
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.rounds = min(args.rounds, 5)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("cli_startup", args, lambda: measure(args), report)


if __name__ == "__main__":
    sys.exit(main())

"""``make bench``: every benchmark of issue #9 in turn, one table of targets, and the files that record them.

Runs each benchmark script in its own process (each starts and stops the servers it needs), prints one
summary table (target, measured, PASS/MISS), and, unless told not to, writes ``bench/results.json``,
the Summary section at the top of ``BENCHMARKS.md`` (between its markers; the hand-written sections stay)
and ``docs/bench-latency-vs-concurrency.png`` / ``docs/bench-latency-vs-pool-size.png``.
Exits 0 whatever the figures, 1 when a benchmark could not run, 130 when interrupted.

    .venv/bin/python bench/run_all.py                      # everything, about 10 minutes; writes the files
    .venv/bin/python bench/run_all.py --quick              # every scenario short (~2-3 min); writes nothing
    .venv/bin/python bench/run_all.py --smoke --no-write   # the smallest run that prints every row (tests)
    .venv/bin/python bench/run_all.py --only checkout,floors [--write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

import plots
import summary
from common import console, load_average, machine, stop_on_sigterm

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

#: each benchmark's arguments per profile, in the order they run (the quietest measurements first)
PROFILES: dict[str, dict[str, list[str]]] = {
    "full": {
        "cli_startup": [],
        "rss": [],
        "floors": [],
        "checkout": [],
        "status": [],
        "api_under_fill": [],
        "fill_rate": [],
        "manager_scale": [],
        "serve_scale": [],
        "autoscale": [],
        "handout": [],
        "wait_take": [],
        "events": [],
        "webhooks": [],
        "autoscale_replay": ["--start-hour", "0", "--hours", "6"],
        "fast_clone": [],
        "suspend_resume": [],
    },
    "quick": {
        "cli_startup": ["--quick"],
        "rss": ["--quick"],
        "floors": ["--quick"],
        "checkout": ["--quick"],
        "status": ["--quick"],
        "api_under_fill": ["--quick"],
        "fill_rate": ["--quick"],
        "manager_scale": ["--quick"],
        "serve_scale": ["--quick"],
        "autoscale": ["--quick"],
        "handout": ["--quick"],
        "wait_take": ["--looks", "50"],
        "events": ["--seconds", "1", "--followers", "0,16"],
        "webhooks": ["--quick"],
        "autoscale_replay": ["--start-hour", "9", "--hours", "1"],
        "fast_clone": ["--cold", "1", "--restored", "3"],
        "suspend_resume": ["--cold", "1", "--cycles", "3"],
    },
    "smoke": {
        "cli_startup": ["--rounds", "1"],
        "rss": ["--quick", "--idle", "0.2"],
        "floors": ["--quick", "--seconds", "0.2", "--warmup", "0.1"],
        "checkout": ["--quick", "--sizes", "30,1000", "--concurrency", "1,32", "--seconds", "0.3"],
        "status": ["--quick", "--pools", "100", "--seconds", "0.3", "--single-seconds", "0.2"],
        "api_under_fill": ["--quick", "--pools", "5", "--per-pool", "10", "--after", "0.3"],
        "fill_rate": ["--quick", "--pools", "4", "--per-pool", "5", "--task-limit", "20", "--clone-seconds", "0.2"],
        "manager_scale": ["--quick", "--pools", "20", "--vms", "100", "--passes", "1", "--changed", "5"],
        "serve_scale": ["--quick", "--big", "60", "--pools", "10", "--seconds", "0.5", "--idle", "1"],
        "autoscale": ["--quick", "--days", "1"],
        # events, webhooks and handout start several processes (10-25 s even at their smallest): quick and full only
        "wait_take": ["--looks", "10"],
    },
}
TIMEOUT_SECONDS = {"full": 900.0, "quick": 300.0, "smoke": 120.0}


def run_benchmark(name: str, extra: Sequence[str], out: Path, timeout: float) -> dict[str, Any] | None:
    """One benchmark script in a child process; its figures, or None when it did not finish."""
    console.rule(f"bench/{name}.py {' '.join(extra)}".strip())
    args = [sys.executable, str(BENCH / f"{name}.py"), *extra, "--json", str(out)]
    sys.stdout.flush()
    child = subprocess.Popen(args, cwd=ROOT)
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        console.print(f"[red]{name} ran longer than {timeout:.0f}s; stopped[/]")
        code = None
    finally:
        if child.poll() is None:
            child.terminate()  # the child's guard stops the servers it started
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    if code != 0 or not out.exists():
        console.print(f"[red]{name} did not finish (exit {code})[/]")
        return None
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def print_table(rows: Sequence[summary.Target]) -> None:
    table = Table(title="issue #9 targets", show_lines=False)
    for column in ("target", "goal", "measured", "verdict"):
        table.add_column(column, overflow="fold")
    colours = {"PASS": "green", "MISS": "red", "NOT RUN": "yellow", "—": "cyan"}
    for row in rows:
        table.add_row(row.what, row.goal, row.measured, f"[{colours[row.verdict]}]{row.verdict}[/]")
    console.print(table)


def write_files(rows: list[summary.Target], figures: dict[str, dict[str, Any] | None], run: dict[str, Any]) -> None:
    results = {"run": run, "targets": summary.as_json(rows), "benchmarks": figures}
    (BENCH / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    document = ROOT / "BENCHMARKS.md"
    text = document.read_text() if document.exists() else "# Benchmarks\n"
    document.write_text(summary.replace_section(text, summary.markdown(rows, figures, run)))
    load = f"load {run['load_before']:.1f} before, {run['load_after']:.1f} after"
    caption = f"{run['date']}, vmpooler {run['machine']['revision']}, {load}, {run['profile']} run"
    try:
        drawn = plots.draw(figures, ROOT / "docs", caption)
    except (KeyError, TypeError, ValueError) as exc:  # a figure missing: the rest is written all the same
        console.print(f"[red]no plots: incomplete figures ({type(exc).__name__}: {exc})[/]")
        drawn = []
    console.print(
        f"wrote bench/results.json, BENCHMARKS.md (Summary), {', '.join(str(p.relative_to(ROOT)) for p in drawn)}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every benchmark in its short form (~2-3 minutes)")
    size.add_argument("--smoke", action="store_true", help="the smallest run that prints every row (tests)")
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        help="write results.json, BENCHMARKS.md's Summary and the plots (default: only for a full run)",
    )
    parser.add_argument("--only", help="comma-separated benchmarks to run (default all)")
    args = parser.parse_args(argv)
    args.profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.write is None:
        args.write = args.profile == "full" and not args.only
    known = PROFILES[args.profile]
    args.names = [n.strip() for n in args.only.split(",")] if args.only else list(known)
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    started, load_before = time.monotonic(), load_average()
    info = machine()
    console.print(f"{info['nproc']} CPUs ({info['cpu']}), vmpooler {info['revision']}, load {load_before:.2f}")
    figures: dict[str, dict[str, Any] | None] = {}
    seconds: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="vmpooler-bench-all-") as tmp:
            for name in args.names:
                extra, began = PROFILES[args.profile][name], time.monotonic()
                figures[name] = run_benchmark(name, extra, Path(tmp) / f"{name}.json", TIMEOUT_SECONDS[args.profile])
                seconds[name] = round(time.monotonic() - began, 1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; every process it started is stopped")
        return 130
    run = {
        "command": " ".join(["bench/run_all.py", *(argv if argv is not None else sys.argv[1:])]).strip(),
        "profile": args.profile,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "minutes": (time.monotonic() - started) / 60,
        "seconds": seconds,
        "machine": info,
        "load_before": load_before,
        "load_after": load_average(),
    }
    rows = summary.targets(figures)
    console.rule("summary")
    print_table(rows)
    console.print(
        f"{args.profile} run, {run['minutes']:.1f} min ({', '.join(f'{n} {s:.0f}s' for n, s in seconds.items())}), "
        f"load {run['load_before']:.2f} before, {run['load_after']:.2f} after",
        highlight=False,
    )
    if args.write:
        write_files(rows, figures, run)
    failed = [name for name, fig in figures.items() if fig is None]
    if failed:
        console.print(f"[red]could not run: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

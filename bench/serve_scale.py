"""`vmpooler serve` as users run it, at scale (issue #16; results in BENCHMARKS.md).

Two scenarios, each against a private redis-server and a fresh ``vmpooler serve`` (the API and the
manager in processes of their own under a supervising parent), dummy provider with its default delays
(clones at once, a VM boots ``ready_delay`` = 2 s later; no inventory file):

(a) **big**: one pool of ``--big`` VMs (3,000) and one of 30, ``task_limit`` 500. The fill from empty is
    timed against the ``task_limit`` bound (task_limit / (ready_delay + the manager's 1 s ready poll):
    each clone holds its slot until the VM is seen ready), first and second half apart (flat in pool
    size?). Then 32 clients check out 60 % of the big pool (at most ``--seconds``), returning each VM at
    once (the manager destroys and refills behind them); then 32 clients read ``/api/v3/status`` for
    half as long.
(b) **many**: ``--pools`` pools (1,000) of 2 filling from empty, then idle ``--idle`` seconds (120):
    the idle CPU of each process, Redis commands per pool pass (``INFO`` against the manager's pass
    counter on /prometheus, counting those scripts run inside Redis), client round trips per pass
    (``total_reads_processed``: Redis reads a pipeline's or a script call's commands in one go) and the
    commands clients sent by name (MONITOR), the history points written, and the warnings in the log
    (``No connection available`` above all).

RSS of every process (parent, API worker, manager, redis-server) after each scenario.
A benchmark, not a test: it exits 0 whatever the figures, 1 when it could not run.

    .venv/bin/python bench/serve_scale.py [--big 3000] [--pools 1000] [--seconds 20] [--idle 120] [--quick]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import redis

from checkout import hostname_in
from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    cpu_seconds,
    memory_mib,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    write_config,
)
from loadgen import Budget, RawConnection, Recorder, Summary, measure
from vmpooler.states import VMState
from vmpooler.store import keys

CONCURRENCY = 32
TASK_LIMIT = 500
READY_DELAY = 2.0  # the dummy provider's default
READY_POLL = 1.0  # the manager's
TARGETS = {"checkout_rate": 1500.0, "checkout_p99_ms": 20.0, "status_p99_ms": 20.0, "fill_share": 0.95}
TARGETS |= {"idle_cpu_share": 0.05, "warnings": 0}
LEND_SHARE = 0.6
WARNING = re.compile(r"\bWARNING\b")
STARVED = "No connection available"


def processes(parent: int) -> dict[str, int]:
    """The service's processes: the parent and its children (read from /proc), the latter by pid."""
    found = {"parent": parent}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            found[f"child {stat.parent.name}"] = int(stat.parent.name)
    return found


def roles_from_log(log: Path, pids: dict[str, int]) -> dict[str, int]:
    """Names the children: the supervisor's first line says which pid is the API worker, which the manager."""
    text = log.read_text(errors="replace")
    named = dict(pids)
    for role in ("API worker", "manager"):
        match = re.search(rf"{role} (\d+)", text)
        if match and int(match.group(1)) in pids.values():
            named = {k: v for k, v in named.items() if v != int(match.group(1))}
            named[role] = int(match.group(1))
    return named


def rss(pids: dict[str, int]) -> dict[str, float]:
    return {role: round(memory_mib(pid)["rss_mib"], 1) for role, pid in pids.items()}


def ready_total(client: redis.Redis, pools: Sequence[str]) -> int:
    with client.pipeline(transaction=False) as pipe:
        for pool in pools:
            pipe.scard(keys.state_set(VMState.READY, pool))
        return sum(pipe.execute())


def wait_filled(client: redis.Redis, pools: Sequence[str], vms: int, cap: float) -> dict[str, float]:
    """Seconds from start to half and to all of ``vms`` ready (polled every 0.1 s)."""
    started, half = time.perf_counter(), math.nan
    while True:
        ready = ready_total(client, pools)
        now = time.perf_counter() - started
        if ready >= vms / 2 and math.isnan(half):
            half = now
        if ready >= vms or now > cap:
            return {"half_seconds": half, "seconds": now, "ready": ready}
        time.sleep(0.1)


def fill_figures(fill: dict[str, float], vms: int) -> dict[str, Any]:
    bound = TASK_LIMIT / (READY_DELAY + READY_POLL)
    rate = fill["ready"] / fill["seconds"]
    # a fill too quick to time in halves (smoke runs) has no halves
    second_seconds = fill["seconds"] - fill["half_seconds"]
    first = (vms / 2) / fill["half_seconds"] if fill["half_seconds"] >= 0.05 else math.nan
    second = (vms / 2) / second_seconds if second_seconds >= 0.05 else math.nan
    return fill | {"vms": vms, "rate": rate, "bound": bound, "share": rate / bound, "first_half_rate": first,
                   "second_half_rate": second}  # fmt: skip


async def checkout_and_return(url: str, pool: str, count: int, seconds: float) -> dict[str, Any]:
    """32 clients check out ``count`` VMs in all (at most for ``seconds``), returning each at once: every
    return is destroyed and replaced, so the manager refills behind them, as many VMs as were lent."""
    checkouts, returns = Recorder(), Recorder()
    budget = Budget(count, seconds)

    async def client() -> None:
        conn = RawConnection.to(url)
        try:
            while budget.take():
                reply = await checkouts.timed(lambda: conn.request("POST", f"/api/v3/vm/{pool}"))
                name = hostname_in(reply[1], pool) if reply is not None and reply[0] == 200 else ""
                if not name:
                    checkouts.error(f"HTTP {reply[0] if reply else '-'}", reply[1].decode() if reply else "")
                    continue
                path = f"/api/v3/vm/{name}"
                back = await returns.timed(lambda: conn.request("DELETE", path))  # noqa: B023 (awaited here)
                if back is not None and back[0] != 200:
                    returns.error(f"HTTP {back[0]}", back[1].decode(errors="replace"))
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - started
    failed = sum(checkouts.errors.values())
    summary = Summary.of(checkouts.latencies, wall, checkouts.errors)
    return {"checkout": summary.as_dict(), "return": Summary.of(returns.latencies, wall, returns.errors).as_dict(),
            "checkouts_per_second": (summary.requests - failed) / wall}  # fmt: skip


def passes(url: str) -> float:
    text = httpx.get(f"{url}/prometheus", timeout=30).text
    return sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("vmpooler_manager_pass_seconds_count")
    )


def log_counts(log: Path) -> dict[str, int]:
    lines = log.read_text(errors="replace").splitlines()
    warnings = [line for line in lines if WARNING.search(line)]
    # what kinds of warning: each message with its numbers and names blurred, and how often
    kinds = Counter(re.sub(r"\b[\w.-]*\d[\w.-]*\b", "#", line.split("WARNING", 1)[1])[:160] for line in warnings)
    return {"warnings": len(warnings), "no_connection_available": sum(1 for line in lines if STARVED in line),
            "warning_kinds": dict(kinds.most_common(8))}  # fmt: skip


def big(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    redis_port, redis_pid = start_redis(children, workdir)
    pools = [("big", args.big), ("small", 30)]
    config = write_config(workdir / "big.yaml", redis_port, pools, config={"task_limit": TASK_LIMIT})
    url, proc = start_vmpooler(children, "serve", config, workdir)
    client = redis.Redis(port=redis_port)
    fill = fill_figures(wait_filled(client, [p for p, _ in pools], args.big + 30, args.cap), args.big + 30)
    console.print(f"(a) filled {fill['ready']} VMs in {fill['seconds']:.1f}s: {fill['rate']:.0f}/s, "
                  f"{fill['share']:.0%} of the bound {fill['bound']:.0f}/s", highlight=False)  # fmt: skip
    # a checkout takes a VM for good (a return destroys it), so lend only part of the pool: the rest must
    # stay ready for the measurement to be of checkouts, not of "pool empty" replies
    lent = run_async(checkout_and_return(url, "big", int(args.big * LEND_SHARE), args.seconds))
    status = run_async(measure(url, "GET", "/api/v3/status", CONCURRENCY, args.seconds / 2, 0.5)).as_dict()
    pids = roles_from_log(workdir / f"serve-{config.stem}.log", processes(proc.pid)) | {"redis-server": redis_pid}
    client.close()
    return {"fill": fill, "lend": lent, "status": status, "rss_mib": rss(pids)} | log_counts(
        workdir / f"serve-{config.stem}.log"
    )


class RoundTrips:
    """Counts the commands clients send (round trips: a script or a MULTI block is one of its own, plus its
    parts) while it runs, by Redis's MONITOR feed; the commands a Lua script runs inside Redis are not counted."""

    def __init__(self, port: int) -> None:
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._client = redis.Redis(port=port)
        self._thread = threading.Thread(target=self._count, daemon=True)

    def __enter__(self) -> RoundTrips:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._client.ping()  # one more command, so the feed yields and the thread sees the stop
        self._thread.join(10)
        self._client.close()

    def _count(self) -> None:
        with self._client.monitor() as feed:
            for command in feed.listen():
                if self._stop.is_set():
                    return
                if command.get("client_type") != "lua":
                    self.counts[str(command["command"]).split(" ", 1)[0].upper()] += 1


def many(children: Children, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    redis_port, redis_pid = start_redis(children, workdir)
    names = [f"p{i:04d}" for i in range(args.pools)]
    config = write_config(workdir / "many.yaml", redis_port, [(n, 2) for n in names], config={"task_limit": TASK_LIMIT})
    started = time.time()
    url, proc = start_vmpooler(children, "serve", config, workdir)
    client = redis.Redis(port=redis_port)
    fill = wait_filled(client, names, 2 * args.pools, args.cap)
    console.print(f"(b) filled {fill['ready']} VMs in {fill['seconds']:.1f}s; idle {args.idle:g}s ...", highlight=False)
    pids = roles_from_log(workdir / f"serve-{config.stem}.log", processes(proc.pid)) | {"redis-server": redis_pid}
    # the scrapes (/prometheus reads every pool's counts from Redis) stay outside the measured window
    passes_before = passes(url)
    cpu_before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    stats = client.info("stats")
    commands_before, reads_before = int(stats["total_commands_processed"]), int(stats["total_reads_processed"])
    with RoundTrips(redis_port) as round_trips:
        time.sleep(args.idle)
    stats = client.info("stats")
    commands = int(stats["total_commands_processed"]) - commands_before - 1  # our INFO
    # a round trip is one read of a client's socket for Redis (a pipeline's commands arrive together);
    # ours: the closing PING of the MONITOR client and the INFO just sent
    reads = int(stats["total_reads_processed"]) - reads_before - 2
    sent = sum(round_trips.counts.values())
    cpu = {role: (cpu_seconds(pid) - cpu_before[role]) / args.idle for role, pid in pids.items()}
    pass_count = passes(url) - passes_before
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(keys.history(name, "1m"))
        points = sum(pipe.execute())
    minutes = int(time.time() // 60 - started // 60)
    client.close()
    vmpooler_cpu = sum(share for role, share in cpu.items() if role != "redis-server")
    return {"pools": args.pools, "fill": fill_figures(fill, 2 * args.pools), "idle_seconds": args.idle,
            "idle_cpu_share": cpu, "idle_cpu_vmpooler": vmpooler_cpu, "passes": pass_count,
            "commands_per_pass": commands / pass_count if pass_count else float("nan"),
            "round_trips_per_pass": reads / pass_count if pass_count else float("nan"),
            "commands_sent_per_pass": sent / pass_count if pass_count else float("nan"),
            "round_trips_by_command": dict(round_trips.counts.most_common(8)),
            "history_points": points, "history_minutes": minutes, "rss_mib": rss(pids)} | log_counts(
        workdir / f"serve-{config.stem}.log")  # fmt: skip


def report(fig: dict[str, Any]) -> None:
    a, b = fig["big"], fig["many"]
    lend, status = a["lend"], a["status"]
    lines = [
        f"(a) fill {a['fill']['vms']} VMs: {a['fill']['rate']:.0f}/s = {a['fill']['share']:.0%} of the bound "
        f"{a['fill']['bound']:.0f}/s (first half {a['fill']['first_half_rate']:.0f}/s, second "
        f"{a['fill']['second_half_rate']:.0f}/s); target >= {TARGETS['fill_share']:.0%}",
        f"(a) checkouts at {CONCURRENCY} clients: {lend['checkouts_per_second']:,.0f}/s, p99 "
        f"{lend['checkout']['p99_ms']:.1f} ms (p50 {lend['checkout']['p50_ms']:.1f}); target >= 1,500/s, <= 20 ms",
        f"(a) /status at {CONCURRENCY} clients: p99 {status['p99_ms']:.1f} ms, {status['throughput']:,.0f}/s; "
        "target <= 20 ms",
        f"(a) warnings {a['warnings']} ({a['no_connection_available']} no connection); RSS MiB {a['rss_mib']}",
        f"(b) {b['pools']} pools of 2: fill {b['fill']['rate']:.0f}/s ({b['fill']['share']:.0%} of the bound); idle "
        f"CPU {b['idle_cpu_vmpooler']:.1%} of a core (vmpooler processes; target <= 5 %), by process "
        + ", ".join(f"{k} {v:.1%}" for k, v in b["idle_cpu_share"].items()),
        f"(b) Redis commands per pool pass while idle: {b['commands_per_pass']:.2f} ({b['passes']:.0f} passes); "
        f"client round trips per pass {b['round_trips_per_pass']:.3f} (Redis's socket reads); commands clients "
        f"sent per pass {b['commands_sent_per_pass']:.3f}, by command {b['round_trips_by_command']}",
        f"(b) history points {b['history_points']} over {b['history_minutes']} minute boundaries x {b['pools']} pools",
        f"(b) warnings {b['warnings']} ({b['no_connection_available']} no connection); RSS MiB {b['rss_mib']}",
    ]
    for line in lines:
        console.print(line, highlight=False)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--big", type=int, default=3000, help="VMs in the big pool of (a) (default 3,000)")
    parser.add_argument("--pools", type=int, default=1000, help="pools of 2 in (b) (default 1,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="checkout phase of (a); /status half (20)")
    parser.add_argument("--idle", type=float, default=120.0, help="idle phase of (b) in seconds (default 120)")
    parser.add_argument("--cap", type=float, default=300.0, help="longest fill in seconds (default 300)")
    parser.add_argument("--quick", action="store_true", help="short: 600 VMs, 200 pools, 5 s, 20 s idle")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.big, args.pools = min(args.big, 600), min(args.pools, 200)
        args.seconds, args.idle, args.cap = min(args.seconds, 5.0), min(args.idle, 20.0), min(args.cap, 120.0)
    if min(args.big, args.pools, args.seconds, args.idle, args.cap) <= 0:
        parser.error("every number must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        figures["big"] = big(children, Path(tmp), args)
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        figures["many"] = many(children, Path(tmp), args)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("serve_scale", args, lambda: run(args), lambda figures, _load: report(figures))


if __name__ == "__main__":
    sys.exit(main())

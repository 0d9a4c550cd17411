"""Webhook deliveries against real processes: p99 from an event to its delivery, and checkout p99 with a hanging
receiver beside a healthy one vs the healthy one alone (results in BENCHMARKS.md).

Starts a private redis-server, `vmpooler api` serving one pool, `vmpooler manager` (which runs the delivery
workers) with each scenario's hooks, and the receivers as a process of their own on loopback (so their work
does not land in the load generator). Events are XADDed to the stream in the shared format at ``--rate`` per
second, as the checkout script writes them once the event stream is merged; the delivery delay is the
receiver's arrival time minus the event's ``at``. The checkout phases reuse bench/checkout.py's clients and
alternate the two scenarios ``--rounds`` times; the median p99 of each is compared. Exits 0 whatever the
figures, 1 when it could not run.

    .venv/bin/python bench/webhooks.py [--seconds 8] [--rate 200] [--concurrency 32] [--rounds 3] [--quick]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from checkout import POOL, Servers, fill, measure, open_clients
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
    wait_until_up,
    write_config,
)
from loadgen import Summary, percentile
from vmpooler.store import keys
from vmpooler.store.connection import connect
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

DELIVERY_P99_TARGET_S = 1.0
CHECKOUT_P99_TOLERANCE = 0.05
SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA=="

#: the receivers' process: `ok` answers 204 and logs "<webhook-id> <arrival>", `hang` never answers
RECEIVER = r"""
import sys, time, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
mode, port, log = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "a", buffering=1)
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        arrived = time.time()
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if mode == "hang":
            threading.Event().wait(3600)
            return
        log.write(f"{self.headers['Webhook-Id']} {arrived:.6f}\n")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
server.serve_forever()
"""


@dataclass
class Delivery:
    """Event-to-delivery delays of one scenario (seconds)."""

    scenario: str
    events: int
    delivered: int
    p50_s: float
    p99_s: float
    max_s: float


@dataclass
class CheckoutRound:
    scenario: str
    round: int
    summary: Summary
    manager_cpu_pct: float  # the delivery workers' process, during the timed phase (of one core)


@dataclass
class Results:
    deliveries: list[Delivery]
    checkouts: list[CheckoutRound]


def start_receiver(children: Children, workdir: Path, mode: str) -> tuple[str, Path]:
    port = free_port()
    log = workdir / f"received-{mode}-{port}.log"
    log.touch()
    proc = children.start([sys.executable, "-c", RECEIVER, mode, str(port), str(log)], workdir / f"receiver-{port}.out")
    wait_until_up(proc, workdir / f"receiver-{port}.out", port)
    return f"http://127.0.0.1:{port}/hook", log


def manager_config(workdir: Path, redis_port: int, hooks: dict[str, str]) -> Path:
    path = workdir / f"manager-{'-'.join(hooks) or 'none'}.yaml"
    raw = {
        "redis": {"server": "127.0.0.1", "port": redis_port},
        "pools": [],
        "webhooks": [{"name": name, "url": url, "secret": SECRET, "timeout_s": 5} for name, url in hooks.items()],
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@contextlib.contextmanager
def manager(children: Children, workdir: Path, config: Path) -> Any:
    """`vmpooler manager` with ``config``'s hooks, its consumer groups made before it is handed over."""
    script = Path(sys.executable).parent / "vmpooler"
    args = [str(script), "manager", "-c", str(config), "--state-dir", str(workdir / "state")]
    proc = children.start(args, workdir / f"{config.stem}.log")
    try:
        yield proc
    finally:
        Children.stop(proc)


async def wait_for_groups(store: Store, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if len(await store.client.xinfo_groups(keys.EVENT_STREAM)) >= count:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the manager made no webhook consumer group within 30 s")


async def emit_events(store: Store, rate: float, seconds: float, prefix: str) -> int:
    """XADD ``rate`` events a second for ``seconds``, in batches every 20 ms; returns how many."""
    written, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - written
        if due > 0:
            async with store.client.pipeline(transaction=False) as pipe:
                for n in range(due):
                    fields = {"type": "vm.checked_out", "pool": POOL, "vm": f"{prefix}{written + n}", "owner": ""}
                    pipe.xadd(keys.EVENT_STREAM, {**fields, "at": f"{time.time():.6f}", "data": "{}"}, maxlen=100_000)
                await pipe.execute()
            written += due
        await asyncio.sleep(0.02)
    return written


async def event_times(store: Store) -> dict[str, float]:
    entries = await store.client.xrange(keys.EVENT_STREAM)
    return {str(entry_id): float(fields["at"]) for entry_id, fields in entries}


def arrivals(log: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in log.read_text().splitlines():
        message_id, _, at = line.partition(" ")
        found.setdefault(message_id, float(at))  # a redelivery is not a faster delivery
    return found


async def delivered_all(log: Path, times: dict[str, float], timeout: float = 10.0) -> None:
    """Wait until the receiver logged every event of ``times`` (or ``timeout`` passed: they count as lost)."""
    # the receiver is another process: its log is all there is to watch
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(times) <= set(arrivals(log)):
            return
        await asyncio.sleep(0.1)


async def delivery_phase(store: Store, scenario: str, log: Path, args: argparse.Namespace) -> Delivery:
    await emit_events(store, args.rate, args.warmup, "warm")  # the new process's first requests are slow
    await delivered_all(log, await event_times(store))
    warm = set(await event_times(store))
    written = await emit_events(store, args.rate, args.seconds, scenario)
    times = {k: v for k, v in (await event_times(store)).items() if k not in warm}
    await delivered_all(log, times)
    got = {k: v for k, v in arrivals(log).items() if k in times}
    delays = sorted(at - times[k] for k, at in got.items())
    return Delivery(
        scenario, written, len(got), percentile(delays, 50), percentile(delays, 99), delays[-1] if delays else 0.0
    )


@contextlib.asynccontextmanager
async def background_events(store: Store, rate: float) -> AsyncIterator[None]:
    task = asyncio.create_task(emit_events(store, rate, 1e9, "bg"))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(args: argparse.Namespace) -> Results:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        healthy_url, healthy_log = start_receiver(children, workdir, "ok")
        hanging_url, _ = start_receiver(children, workdir, "hang")
        api_config = write_config(workdir / "api.yaml", redis_port, [(POOL, args.pool_size)])
        url, api = start_vmpooler(children, "api", api_config, workdir)
        servers = Servers(url, api.pid, redis_pid)
        scenarios = {
            "healthy hook only": {"healthy": healthy_url},
            "healthy + hanging hook": {"healthy": healthy_url, "hanging": hanging_url},
        }
        configs = {name: manager_config(workdir, redis_port, hooks) for name, hooks in scenarios.items()}
        return run_async(measure_all(servers, redis_port, children, workdir, configs, scenarios, healthy_log, args))


async def measure_all(
    servers: Servers,
    redis_port: int,
    children: Children,
    workdir: Path,
    configs: dict[str, Path],
    scenarios: dict[str, dict[str, str]],
    healthy_log: Path,
    args: argparse.Namespace,
) -> Results:
    store = Store(connect("127.0.0.1", redis_port))
    deliveries: list[Delivery] = []
    rounds: list[CheckoutRound] = []
    try:
        for name, config in configs.items():
            console.print(f"delivery delay: {name} ...", highlight=False)
            await store.client.flushdb()
            with manager(children, workdir, config):
                await wait_for_groups(store, len(scenarios[name]))
                deliveries.append(await delivery_phase(store, name, healthy_log, args))
        await fill(store, args.pool_size)
        for number in range(1, args.rounds + 1):
            for name, config in configs.items():
                console.print(f"checkouts, round {number}: {name} ...", highlight=False)
                with manager(children, workdir, config) as proc:
                    await wait_for_groups(store, len(scenarios[name]))
                    async with (
                        background_events(store, args.rate),
                        open_clients("raw", servers.url, args.concurrency) as posts,
                    ):
                        cpu_before, started = cpu_seconds(proc.pid), time.monotonic()
                        result = await measure(servers, args.pool_size, posts, store, args)
                        cpu = 100 * (cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - started)
                rounds.append(CheckoutRound(name, number, result.summary, cpu))
                await store.client.delete(keys.EVENT_STREAM)
    finally:
        await store.close()
    return Results(deliveries, rounds)


def median_p99(results: Results, scenario: str) -> float:
    return statistics.median(r.summary.p99_ms for r in results.checkouts if r.scenario == scenario)


def report(results: Results, _load: float) -> None:
    table = Table(title="event -> delivery to the healthy hook (seconds)")
    for column in ("scenario", "events", "delivered", "p50", "p99", "max"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for d in results.deliveries:
        table.add_row(d.scenario, str(d.events), str(d.delivered), *(f"{v:.3f}" for v in (d.p50_s, d.p99_s, d.max_s)))
    console.print(table)
    checkouts = Table(title="POST /api/v3/vm checkouts while events flow (ms)")
    for column in ("scenario", "round", "req/s", "p50", "p99", "max", "manager CPU %"):
        checkouts.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results.checkouts:
        s = r.summary
        latency = (f"{v:.2f}" for v in (s.p50_ms, s.p99_ms, s.max_ms))
        checkouts.add_row(r.scenario, str(r.round), f"{s.throughput:,.0f}", *latency, f"{r.manager_cpu_pct:.1f}")
    console.print(checkouts)
    worst = max((d.p99_s for d in results.deliveries), default=float("nan"))
    lost = sum(d.events - d.delivered for d in results.deliveries)
    console.print(
        f"target: delivery p99 <= {DELIVERY_P99_TARGET_S:g} s: {worst:.3f} s "
        f"{verdict(worst <= DELIVERY_P99_TARGET_S and lost == 0)} (undelivered: {lost})",
        highlight=False,
    )
    names = list(dict.fromkeys(r.scenario for r in results.checkouts))
    if len(names) == 2:
        base, hanging = median_p99(results, names[0]), median_p99(results, names[1])
        change = hanging / base - 1 if base else float("nan")
        console.print(
            f"target: checkout p99 with a hanging receiver within +{CHECKOUT_P99_TOLERANCE:.0%}: median p99 "
            f"{base:.2f} ms -> {hanging:.2f} ms ({change:+.1%}) {verdict(change <= CHECKOUT_P99_TOLERANCE)}",
            highlight=False,
        )


def figures(results: Results) -> dict[str, Any]:
    return {
        "deliveries": [asdict(d) for d in results.deliveries],
        "checkouts": [
            {"scenario": r.scenario, "round": r.round, "manager_cpu_pct": r.manager_cpu_pct, **r.summary.as_dict()}
            for r in results.checkouts
        ],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per phase (default 8)")
    parser.add_argument("--rate", type=float, default=200.0, help="events written per second (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="checkout clients (default 32)")
    parser.add_argument("--pool-size", type=int, default=1000, help="ready VMs in the pool (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="checkout rounds per scenario, alternating (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each checkout phase")
    parser.add_argument("--quick", action="store_true", help="a short run: 2 s phases, 1 round")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = min(args.seconds, 2.0), 1, 0.3
    args.requests, args.max_seconds = None, 120.0  # what checkout.measure reads
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("webhooks", args, lambda: run(args), report, figures)


if __name__ == "__main__":
    sys.exit(main())

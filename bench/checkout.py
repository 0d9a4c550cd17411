"""Concurrent checkouts against a real ``vmpooler api`` over HTTP (results in BENCHMARKS.md).

Starts a private redis-server and the API alone (no manager) on loopback, fills one pool with N
ready VMs, and has C clients loop for T seconds: ``POST /api/v3/vm/bench``, then put the VM straight
back into ready, as the manager would refill the pool, so the pool stays the same size. Only the HTTP
call is timed. A reply naming a VM that another client holds at that moment, and any reply other than
200, is counted and printed. A benchmark, not a test: it exits 0 whatever the figures, 1 when it could
not run.

    .venv/bin/python bench/checkout.py [--seconds 5 | --requests 3000] [--sizes 30,1000,10000]
        [--concurrency 1,8,32,64] [--quick] [--json FILE] [--client raw|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from common import (
    Children,
    argument_parser,
    benchmark_main,
    console,
    cpu_seconds,
    numbers,
    parse_with_figures,
    run_async,
    start_redis,
    start_vmpooler,
    verdict,
    write_config,
)
from loadgen import REQUEST_TIMEOUT, Budget, RawConnection, Recorder, Reply, Summary
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import connect
from vmpooler.store.redis import Store

POOL = "bench"
POOL_SIZES = (30, 1000, 10000)
CONCURRENCY = (1, 8, 32, 64)
TARGET_CONCURRENCY = 32
P99_TARGET_MS = 20.0  # at TARGET_CONCURRENCY, issue #9
THROUGHPUT_TARGET = 1500.0  # checkouts per second at TARGET_CONCURRENCY
SIZE_TOLERANCE = 0.15  # larger pools' p99 and throughput within 15 % of the smallest pool's
CHECKOUT_PATH = f"/api/v3/vm/{POOL}"

#: one checkout request on a client's own connection
Post = Callable[[], Awaitable[Reply]]


# ---- clients -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_clients(kind: str, url: str, count: int) -> AsyncIterator[list[Post]]:
    """``count`` independent keep-alive connections, one per client task."""
    if kind == "raw":
        raw = [RawConnection.to(url) for _ in range(count)]

        def raw_poster(conn: RawConnection) -> Post:
            return lambda: conn.request("POST", CHECKOUT_PATH)

        try:
            yield [raw_poster(conn) for conn in raw]
        finally:
            for conn in raw:
                await conn.close()
        return
    async with contextlib.AsyncExitStack() as stack:
        # one client each: a shared AsyncClient's pool costs O(connections) per request
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT))
            for _ in range(count)
        ]

        def poster(client: httpx.AsyncClient) -> Post:
            async def post() -> Reply:
                reply = await client.post(CHECKOUT_PATH)
                return reply.status_code, reply.content

            return post

        yield [poster(client) for client in clients]


@dataclass
class Tally(Recorder):
    """What the checkout clients of one run saw, besides latencies and errors."""

    duplicates: list[str] = field(default_factory=list)  # names handed out while another client held them
    refill_misses: int = 0  # VMs that were no longer in running when put back
    held: set[str] = field(default_factory=set)
    peak_held: int = 0


async def put_back(store: Store, name: str) -> bool:
    """RUNNING -> READY at the back of the ready queue, atomically: the manager refilling the pool."""
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.smove(keys.state_set(VMState.RUNNING, POOL), keys.state_set(VMState.READY, POOL), name)
        pipe.rpush(keys.ready_queue(POOL), name)
        pipe.hdel(keys.active(POOL), name)
        moved, _, _ = await pipe.execute()
    return bool(moved)


def hostname_in(body: bytes, pool: str = POOL) -> str:
    """The short name of the VM a v3 checkout reply from ``pool`` names; '' when it names none."""
    try:
        return str(json.loads(body)[pool]["hostname"]).split(".", 1)[0]
    except (ValueError, KeyError, TypeError):
        return ""


async def client(post: Post, store: Store, budget: Budget, tally: Tally) -> None:
    while budget.take():
        try:
            reply = await tally.timed(post)
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__, str(exc))
            continue
        if reply is None:
            continue
        status, body = reply
        name = hostname_in(body) if status == 200 else ""
        if not name:
            tally.error(f"HTTP {status}", body.decode(errors="replace"))
            continue
        if name in tally.held:
            tally.duplicates.append(name)
            continue  # the client already holding it puts it back
        tally.held.add(name)
        tally.peak_held = max(tally.peak_held, len(tally.held))
        # "use" it for one event-loop turn, in which other clients' replies are read: one naming this
        # VM can only come from a second hand-out, since nobody has started to put it back yet
        await asyncio.sleep(0)
        # let go before putting it back: from then on the server may rightly hand it out again
        tally.held.discard(name)
        if not await put_back(store, name):
            tally.refill_misses += 1  # it had left running: also the trace of a double hand-out


async def drive(posts: Sequence[Post], store: Store, budget: Budget) -> tuple[Tally, float]:
    """Checkouts by one client per connection until the budget is spent; what they saw, and the wall time."""
    tally = Tally()
    started = time.perf_counter()
    await asyncio.gather(*(client(post, store, budget, tally) for post in posts))
    return tally, time.perf_counter() - started


# ---- one scenario --------------------------------------------------------------------------------


@dataclass
class Result:
    """One scenario's figures (latency in ms)."""

    pool_size: int
    concurrency: int
    summary: Summary
    error_samples: list[str]
    duplicates: list[str]
    refill_misses: int
    peak_held: int
    pool_after: dict[str, int]
    api_cpu_us: float  # per timed request: the API process, redis-server, this load generator
    redis_cpu_us: float
    loadgen_cpu_us: float
    lua_us: float  # redis' own time per checkout script call

    @property
    def name(self) -> str:
        return f"{self.pool_size} VMs, c{self.concurrency}"


@dataclass(frozen=True)
class Servers:
    """The processes under test: one API serving one pool, and its Redis."""

    url: str
    api_pid: int
    redis_pid: int


def budget_of(args: argparse.Namespace) -> Budget:
    """The timed phase: ``--requests`` requests (capped at ``--max-seconds``), else ``--seconds``."""
    return Budget(args.requests, args.max_seconds) if args.requests else Budget(None, args.seconds)


async def measure(servers: Servers, size: int, posts: Sequence[Post], store: Store, args: argparse.Namespace) -> Result:
    """Warm up, then time checkouts on the same connections."""
    warm, _ = await drive(posts, store, Budget(None, args.warmup))
    await store.client.config_resetstat()
    pids = (servers.api_pid, servers.redis_pid)
    cpu_before = [*map(cpu_seconds, pids), time.process_time()]
    tally, seconds = await drive(posts, store, budget_of(args))
    cpu_after = [*map(cpu_seconds, pids), time.process_time()]
    lua = (await store.client.info("commandstats")).get("cmdstat_evalsha", {})
    for kind, n in warm.errors.items():
        tally.errors[f"{kind} (warm-up)"] += n
    summary = Summary.of(tally.latencies, seconds, tally.errors)
    n = summary.requests
    used = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    api_cpu, redis_cpu, loadgen_cpu = (1e6 * seconds_used / n if n else math.nan for seconds_used in used)
    return Result(
        pool_size=size,
        concurrency=len(posts),
        summary=summary,
        error_samples=(tally.samples + warm.samples)[:5],
        duplicates=tally.duplicates + warm.duplicates,  # a double hand-out counts whenever it happens
        refill_misses=tally.refill_misses + warm.refill_misses,
        peak_held=tally.peak_held,
        pool_after=await pool_state(store),
        api_cpu_us=api_cpu,
        redis_cpu_us=redis_cpu,
        loadgen_cpu_us=loadgen_cpu,
        lua_us=float(lua.get("usec_per_call", math.nan)),
    )


async def fill(store: Store, size: int) -> None:
    """A fresh database holding ``size`` ready VMs ``bench-00001``... in the pool, queued for checkout."""
    await store.client.flushdb()

    async def add(name: str) -> None:
        if not (await store.create_pending(POOL, name, {}) and await store.mark_ready(POOL, name, time.time(), 0.0)):
            raise RuntimeError(f"could not make {name} ready")

    names = [f"{POOL}-{i:05d}" for i in range(1, size + 1)]
    for start in range(0, size, 64):  # as many at once as the client has connections
        await asyncio.gather(*(add(name) for name in names[start : start + 64]))


async def pool_state(store: Store) -> dict[str, int]:
    counts = (await store.counts([POOL]))[POOL]
    sizes = {state.value: n for state, n in counts.items() if n}
    return sizes | {"queue": int(await store.client.llen(keys.ready_queue(POOL)))}


async def bench_pool(servers: Servers, redis_port: int, size: int, args: argparse.Namespace) -> list[Result]:
    """Every concurrency against one API process serving a pool of ``size``."""
    store = Store(connect("127.0.0.1", redis_port))
    results: list[Result] = []
    try:
        await fill(store, size)
        for concurrency in args.concurrency:
            console.print(f"{size} VMs, concurrency {concurrency} ...", highlight=False)
            async with open_clients(args.client, servers.url, concurrency) as posts:
                results.append(await measure(servers, size, posts, store, args))
    finally:
        await store.close()
    return results


def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        for size in args.sizes:
            config = write_config(workdir / f"pool-{size}.yaml", redis_port, [(POOL, size)])
            url, api = start_vmpooler(children, "api", config, workdir)
            results += run_async(bench_pool(Servers(url, api.pid, redis_pid), redis_port, size, args))
            Children.stop(api)
    return results


# ---- report --------------------------------------------------------------------------------------


def size_ratios(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Each larger pool's p99 and throughput over the smallest pool's, at each concurrency."""
    by_key = {(r.pool_size, r.concurrency): r.summary for r in results}
    smallest = min(r.pool_size for r in results)
    ratios = []
    for (size, concurrency), s in sorted(by_key.items()):
        base = by_key[(smallest, concurrency)]
        if size == smallest:
            continue
        p99 = s.p99_ms / base.p99_ms if base.p99_ms else math.nan
        rate = s.throughput / base.throughput if base.throughput else math.nan
        within = p99 <= 1 + SIZE_TOLERANCE and rate >= 1 - SIZE_TOLERANCE
        ratios.append({"pool_size": size, "concurrency": concurrency, "p99": p99, "throughput": rate, "ok": within})
    return ratios


def report(results: list[Result], args: argparse.Namespace) -> None:
    table = Table(title=f"POST {CHECKOUT_PATH} ({args.client} client), latency in ms")
    for column in ("scenario", "requests", "req/s", "p50", "p90", "p99", "max", "errors", "dupes"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        s = r.summary
        table.add_row(
            r.name,
            str(s.requests),
            f"{s.throughput:,.0f}",
            *(f"{v:.2f}" for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms)),
            str(sum(s.errors.values())),
            str(len(r.duplicates) + r.refill_misses),
        )
    console.print(table)

    costs = Table(title="CPU per checkout in µs (2 cores shared by all three)")
    for column in ("scenario", "API process", "redis-server", "(of which Lua)", "load generator", "peak held"):
        costs.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        cpu = (r.api_cpu_us, r.redis_cpu_us, r.lua_us, r.loadgen_cpu_us)
        costs.add_row(r.name, *(f"{v:.0f}" for v in cpu), str(r.peak_held))
    console.print(costs)

    for r in results:
        expected = {"ready": r.pool_size, "queue": r.pool_size}
        if r.summary.errors or r.duplicates or r.refill_misses or r.pool_after != expected:
            console.print(
                f"[red]{r.name}[/]: errors {r.summary.errors}, double hand-outs {r.duplicates[:20]}, "
                f"refill misses {r.refill_misses}, pool afterwards {r.pool_after}",
                highlight=False,
            )
            for sample in r.error_samples:
                console.print(f"    {sample}", markup=False, highlight=False)

    ratios = Table(title=f"pool / smallest pool (target: within {SIZE_TOLERANCE:.0%} at c{TARGET_CONCURRENCY})")
    for column in ("pool", "concurrency", "p99 ratio", "req/s ratio", "within"):
        ratios.add_column(column, justify="right")
    for ratio in size_ratios(results):
        ratios.add_row(
            str(ratio["pool_size"]),
            str(ratio["concurrency"]),
            f"{ratio['p99']:.2f}",
            f"{ratio['throughput']:.2f}",
            verdict(ratio["ok"]),
        )
    console.print(ratios)

    for r in results:
        if r.concurrency == TARGET_CONCURRENCY:
            s = r.summary
            console.print(
                f"target at c{TARGET_CONCURRENCY}, pool {r.pool_size}: >= {THROUGHPUT_TARGET:,.0f}/s: "
                f"{s.throughput:,.0f}/s {verdict(s.throughput >= THROUGHPUT_TARGET)}; p99 <= {P99_TARGET_MS:g} ms: "
                f"{s.p99_ms:.2f} ms {verdict(s.p99_ms <= P99_TARGET_MS)}",
                highlight=False,
            )
    clean = not any(r.duplicates or r.refill_misses for r in results)
    console.print(f"no VM handed out twice: {verdict(clean)}")


def figures(results: Sequence[Result]) -> dict[str, Any]:
    rows = []
    for r in results:
        row = asdict(r)
        row |= row.pop("summary")
        rows.append(row)
    return {"scenarios": rows, "size_ratios": size_ratios(results)}


# ---- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per scenario (default 5)")
    parser.add_argument("--requests", type=int, help="instead: timed checkouts per scenario")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time cap with --requests (default 120)")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds before each (default 1)")
    parser.add_argument("--sizes", type=numbers, default=POOL_SIZES, help="pool sizes (default 30,1000,10000)")
    parser.add_argument("--concurrency", type=numbers, default=CONCURRENCY, help="clients (default 1,8,32,64)")
    parser.add_argument("--quick", action="store_true", help="a short run: 1 s per scenario, 0.3 s warm-up")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator (default raw)")
    args = parse_with_figures(parser, argv)
    if args.quick:
        args.seconds, args.warmup = min(args.seconds, 1.0), min(args.warmup, 0.3)
        args.requests = min(args.requests, 300) if args.requests else None
    if (args.requests is not None and args.requests < 1) or args.seconds <= 0 or args.warmup < 0:
        parser.error("--requests and --seconds must be positive, --warmup at least 0")
    if not args.sizes or not args.concurrency or min(args.sizes + args.concurrency) < 1:
        parser.error("--sizes and --concurrency need positive numbers")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return benchmark_main("checkout", args, lambda: run(args), lambda results, _load: report(results, args), figures)


if __name__ == "__main__":
    sys.exit(main())

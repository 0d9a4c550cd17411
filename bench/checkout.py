"""Concurrent checkouts against a real ``vmpooler api`` over HTTP (results in BENCHMARKS.md).

Starts a private redis-server and the API alone (no manager) on loopback, fills one pool with N
ready VMs, and has C clients loop: ``POST /api/v3/vm/bench``, then put the VM straight back into
ready, as the manager would refill the pool, so the pool stays the same size. Only the HTTP call is
timed. A reply naming a VM that another client holds at that moment, and any reply other than 200,
is counted and printed. A benchmark, not a test: it exits 0 whatever the figures, 1 when it could
not run.

    .venv/bin/python bench/checkout.py [--requests 3000] [--quick] [--json FILE] [--client raw|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.table import Table

import vmpooler
from vmpooler.states import VMState
from vmpooler.store import keys
from vmpooler.store.connection import connect
from vmpooler.store.embedded import free_port, redis_server_binary
from vmpooler.store.redis import Store

POOL = "bench"
POOL_SIZES = (30, 1000)
CONCURRENCY = (1, 8, 32)
P99_TARGET_MS = 10.0  # at the highest concurrency
SIZE_TOLERANCE = 0.20  # the large pool's p99 and throughput within 20 % of the small pool's
CHECKOUT_PATH = f"/api/v3/vm/{POOL}"
REQUEST_TIMEOUT = 10.0  # seconds

console = Console(width=None if sys.stdout.isatty() else 120)  # a log or a pipe gets the whole table
T = TypeVar("T")


# ---- child processes -----------------------------------------------------------------------------


class Children:
    """Every process the benchmark starts; leaving the ``with`` block stops each one still running."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self._procs):
            self.stop(proc)

    def start(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # output to a file, not a pipe: a pipe nobody reads fills up and stalls the server
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], wait: float = 10.0) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until_up(proc: subprocess.Popen[bytes], log: Path, probe: str | int, timeout: float = 20.0) -> None:
    """Wait for ``probe`` (a URL answering 200, or a port accepting connections); fail if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if isinstance(probe, int):
                socket.create_connection(("127.0.0.1", probe), timeout=0.2).close()
                return
            if httpx.get(probe, timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered at {probe} within {timeout:.0f}s (log: {log})")


def start_redis(children: Children, workdir: Path) -> tuple[int, int]:
    """A throw-away redis-server (no persistence); returns (port, pid)."""
    port = free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    log = workdir / "redis.log"
    proc = children.start(args, log)
    wait_until_up(proc, log, port)
    return port, proc.pid


def start_api(children: Children, workdir: Path, redis_port: int, size: int) -> tuple[str, subprocess.Popen[bytes]]:
    """``vmpooler api`` (never the manager) with one pool of ``size``; returns (base URL, process)."""
    script = Path(sys.executable).parent / "vmpooler"
    if not script.exists():
        raise RuntimeError(f"no {script}: run `make install` first")
    config = workdir / f"vmpooler-{size}.yaml"
    config.write_text(
        f":redis:\n  server: 127.0.0.1\n  port: {redis_port}\n"
        f":config:\n  site_name: bench\n"
        f":pools:\n  - name: {POOL}\n    template: {POOL}\n    size: {size}\n"
    )
    # the original's environment overrides (REDIS_SERVER, ...) must not point the API elsewhere
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "VMPOOLER_"))}
    port = free_port()
    args = [str(script), "api", "-c", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--state-dir", str(workdir / "state")]
    log = workdir / f"api-{size}.log"
    proc = children.start(args, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, log, f"{url}/api/v3/vm")
    return url, proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); NaN where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


# ---- HTTP clients --------------------------------------------------------------------------------

#: one checkout: (status, body)
Post = Callable[[], Awaitable[tuple[int, bytes]]]


class RawConnection:
    """One keep-alive HTTP/1.1 connection that speaks just enough HTTP for this benchmark.

    The default load generator. On a 2-core machine the client shares the CPU with the server it
    measures, so it must be cheap: this costs ~0.15 ms of CPU per checkout, httpx ~0.8 ms (and a
    shared ``httpx.AsyncClient`` ~2 ms at 32 connections, encode/httpx#3215).
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port = host, port
        self._request = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        try:
            self._writer.write(self._request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" not in headers:
                raise ValueError(f"reply without Content-Length: {status_line}")
            body = await self._reader.readexactly(int(headers["content-length"]))
        except BaseException:
            await self.close()  # a half-read reply leaves the connection useless
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split(" ", 2)[1]), body

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def open_clients(kind: str, url: str, count: int) -> AsyncIterator[list[Post]]:
    """``count`` independent keep-alive connections, one per client task."""
    if kind == "raw":
        host, port = url.removeprefix("http://").split(":")
        raw = [RawConnection(host, int(port), CHECKOUT_PATH) for _ in range(count)]
        try:
            yield [conn.post for conn in raw]
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
            async def post() -> tuple[int, bytes]:
                reply = await client.post(CHECKOUT_PATH)
                return reply.status_code, reply.content

            return post

        yield [poster(client) for client in clients]


# ---- one run of checkouts ------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients of one run saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, every reply that arrived
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 503", "TimeoutError", ...
    error_samples: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # names handed out while another client held them
    refill_misses: int = 0  # VMs that were no longer in running when put back
    held: set[str] = field(default_factory=set)
    peak_held: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail[:300]}")


class Tickets:
    """A fixed number of requests shared by the clients, and a deadline after which none are issued."""

    def __init__(self, count: int, seconds: float) -> None:
        self.left = count
        self.deadline = time.monotonic() + seconds

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() > self.deadline:
            return False
        self.left -= 1
        return True


async def put_back(store: Store, name: str) -> bool:
    """RUNNING -> READY at the back of the ready queue, atomically: the manager refilling the pool."""
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.smove(keys.state_set(VMState.RUNNING, POOL), keys.state_set(VMState.READY, POOL), name)
        pipe.rpush(keys.ready_queue(POOL), name)
        pipe.hdel(keys.active(POOL), name)
        moved, _, _ = await pipe.execute()
    return bool(moved)


def hostname_in(body: bytes) -> str:
    """The short name of the VM a v3 checkout reply names; '' when it names none."""
    try:
        return str(json.loads(body)[POOL]["hostname"]).split(".", 1)[0]
    except (ValueError, KeyError, TypeError):
        return ""


async def client(post: Post, store: Store, tickets: Tickets, tally: Tally) -> None:
    while tickets.take():
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status, body = await post()
        except (OSError, TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError, httpx.HTTPError) as exc:
            tally.error(type(exc).__name__, str(exc))
            continue
        tally.latencies.append(time.perf_counter() - started)
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


async def drive(posts: Sequence[Post], store: Store, requests: int, seconds: float) -> tuple[Tally, float]:
    """``requests`` checkouts by one client per connection; returns what they saw and the wall time."""
    tally = Tally()
    tickets = Tickets(requests, seconds)
    started = time.perf_counter()
    await asyncio.gather(*(client(post, store, tickets, tally) for post in posts))
    return tally, time.perf_counter() - started


# ---- figures -------------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence; NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@dataclass
class Result:
    """One scenario's figures; ``latencies_ms`` holds every timed reply, ascending."""

    pool_size: int
    concurrency: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    error_samples: list[str]
    duplicates: list[str]
    refill_misses: int
    peak_held: int
    pool_after: dict[str, int]
    server_cpu_us: float  # per timed request: the API process, redis-server, this load generator
    redis_cpu_us: float
    loadgen_cpu_us: float
    lua_us: float  # redis' own time per checkout script call
    latencies_ms: list[float]

    @property
    def name(self) -> str:
        return f"{self.pool_size} VMs, c{self.concurrency}"

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class Servers:
    """The processes under test: one API serving one pool, and its Redis."""

    url: str
    api_pid: int
    redis_port: int
    redis_pid: int


@dataclass(frozen=True)
class Scenario:
    pool_size: int
    concurrency: int
    servers: Servers


async def measure(scenario: Scenario, posts: Sequence[Post], store: Store, args: argparse.Namespace) -> Result:
    """Warm up, then time ``args.requests`` checkouts on the same connections."""
    warm, _ = await drive(posts, store, args.warmup, args.max_seconds)
    await store.client.config_resetstat()
    pids = (scenario.servers.api_pid, scenario.servers.redis_pid)
    cpu_before = [*map(cpu_seconds, pids), time.process_time()]
    tally, seconds = await drive(posts, store, args.requests, args.max_seconds)
    cpu_after = [*map(cpu_seconds, pids), time.process_time()]
    lua = (await store.client.info("commandstats")).get("cmdstat_evalsha", {})
    tally.duplicates += warm.duplicates  # a double hand-out counts whenever it happens
    tally.refill_misses += warm.refill_misses
    for kind, n in warm.errors.items():
        tally.errors[f"{kind} (warm-up)"] += n
    tally.error_samples += warm.error_samples
    ms = sorted(v * 1000 for v in tally.latencies)
    n = len(ms)
    used = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    server, redis_cpu, loadgen = (1e6 * seconds_used / n if n else math.nan for seconds_used in used)
    return Result(
        pool_size=scenario.pool_size,
        concurrency=scenario.concurrency,
        requests=n,
        seconds=seconds,
        throughput=n / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else math.nan,
        errors=dict(tally.errors),
        error_samples=tally.error_samples[:5],
        duplicates=tally.duplicates,
        refill_misses=tally.refill_misses,
        peak_held=tally.peak_held,
        pool_after=await pool_state(store),
        server_cpu_us=server,
        redis_cpu_us=redis_cpu,
        loadgen_cpu_us=loadgen,
        lua_us=float(lua.get("usec_per_call", math.nan)),
        latencies_ms=[round(v, 4) for v in ms],
    )


# ---- the run -------------------------------------------------------------------------------------


async def fill(store: Store, size: int) -> None:
    """A fresh database holding ``size`` ready VMs ``bench-00001``... in the pool, queued for checkout."""
    await store.client.flushdb()

    async def add(name: str) -> None:
        if not (await store.create_pending(POOL, name, {}) and await store.mark_ready(POOL, name, time.time(), 0.0)):
            raise RuntimeError(f"could not make {name} ready")

    names = [f"{POOL}-{i:05d}" for i in range(1, size + 1)]
    for start in range(0, size, 32):  # the store's client holds 64 connections and does not wait for one
        await asyncio.gather(*(add(name) for name in names[start : start + 32]))


async def pool_state(store: Store) -> dict[str, int]:
    counts = (await store.counts([POOL]))[POOL]
    sizes = {state.value: n for state, n in counts.items() if n}
    return sizes | {"queue": int(await store.client.llen(keys.ready_queue(POOL)))}


async def bench_pool(servers: Servers, size: int, args: argparse.Namespace) -> list[Result]:
    """Every concurrency against one API process serving a pool of ``size``."""
    store = Store(connect("127.0.0.1", servers.redis_port))
    results: list[Result] = []
    try:
        await fill(store, size)
        for concurrency in CONCURRENCY:
            console.print(f"{size} VMs, concurrency {concurrency}: {args.warmup} warm-up, {args.requests} timed")
            async with open_clients(args.client, servers.url, concurrency) as posts:
                results.append(await measure(Scenario(size, concurrency, servers), posts, store, args))
    finally:
        await store.close()
    return results


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop  # the server runs on uvloop too; it keeps the load generator's share of the CPU small
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, redis_pid = start_redis(children, workdir)
        for size in POOL_SIZES:
            url, api = start_api(children, workdir, redis_port, size)
            results += run_async(bench_pool(Servers(url, api.pid, redis_port, redis_pid), size, args))
            Children.stop(api)
    return results


# ---- report --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]MISS[/]"


def report(results: list[Result], client_kind: str) -> None:
    table = Table(title=f"POST {CHECKOUT_PATH} ({client_kind} client), latency in ms")
    for column in ("scenario", "pool", "conc.", "requests", "req/s", "p50", "p90", "p99", "max", "errors", "dupes"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        figures = (r.throughput, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms)
        table.add_row(
            r.name,
            str(r.pool_size),
            str(r.concurrency),
            str(r.requests),
            *(f"{figures[0]:,.0f}", *(f"{v:.2f}" for v in figures[1:])),
            str(r.error_count),
            str(len(r.duplicates) + r.refill_misses),
        )
    console.print(table)

    costs = Table(title="CPU per checkout in µs (2 cores shared by all three)")
    for column in ("scenario", "API process", "redis-server", "(of which Lua)", "load generator", "peak held"):
        costs.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        cpu = (r.server_cpu_us, r.redis_cpu_us, r.lua_us, r.loadgen_cpu_us)
        costs.add_row(r.name, *(f"{v:.0f}" for v in cpu), str(r.peak_held))
    console.print(costs)

    for r in results:
        expected = {"ready": r.pool_size, "queue": r.pool_size}
        if r.errors or r.duplicates or r.refill_misses or r.pool_after != expected:
            console.print(
                f"[red]{r.name}[/]: errors {r.errors}, double hand-outs {r.duplicates[:20]}, "
                f"refill misses {r.refill_misses}, pool afterwards {r.pool_after}",
                highlight=False,
            )
            for sample in r.error_samples:
                console.print(f"    {sample}", markup=False, highlight=False)

    by_key = {(r.pool_size, r.concurrency): r for r in results}
    small, large = POOL_SIZES
    ratios = Table(title=f"pool {large} / pool {small} (target: within {SIZE_TOLERANCE:.0%})")
    for column in ("concurrency", "p99 ratio", "req/s ratio", "verdict"):
        ratios.add_column(column, justify="right")
    for c in CONCURRENCY:
        a, b = by_key[(small, c)], by_key[(large, c)]
        p99 = b.p99_ms / a.p99_ms
        rate = b.throughput / a.throughput if a.throughput else math.nan
        within = p99 <= 1 + SIZE_TOLERANCE and rate >= 1 - SIZE_TOLERANCE
        ratios.add_row(str(c), f"{p99:.2f}", f"{rate:.2f}", verdict(within))
    console.print(ratios)

    top = max(CONCURRENCY)
    for size in POOL_SIZES:
        r = by_key[(size, top)]
        console.print(
            f"target p99 <= {P99_TARGET_MS:g} ms at concurrency {top}, pool {size}: "
            f"{r.p99_ms:.2f} ms {verdict(r.p99_ms <= P99_TARGET_MS)}"
        )
    clean = not any(r.duplicates or r.refill_misses for r in results)
    console.print(f"no VM handed out twice: {verdict(clean)}")


def machine() -> dict[str, Any]:
    """Where the figures come from: CPUs, Python, and the revision of the vmpooler under test."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    source = Path(vmpooler.__file__).parent
    try:
        git = ["git", "-C", str(source), "describe", "--always", "--dirty"]
        revision = subprocess.run(git, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = "unknown (not a git checkout)"
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "vmpooler": f"{source} at {revision}",
    }


# ---- command line --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed checkouts per scenario (default 3000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed checkouts before each (default 200)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time cap per phase (default 120)")
    parser.add_argument("--quick", action="store_true", help="a short run: 300 requests, 50 warm-up")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator (default raw)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw figures to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = min(args.requests, 300), min(args.warmup, 50)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the run the way Ctrl-C does: children stopped, temp files gone


def guarded_main(work: Callable[[dict[str, str]], None]) -> int:
    """Every benchmark's entry point: print the machine, run ``work(machine)``, and turn Ctrl-C,
    SIGTERM and a failed start into an exit code (every child process is stopped either way)."""
    signal.signal(signal.SIGTERM, _interrupt)
    info = machine()
    console.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs ({info['cpu']})", highlight=False)
    console.print(f"Python {info['python']}, vmpooler from {info['vmpooler']}", highlight=False)
    try:
        work(info)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; every process it started is stopped")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]the benchmark could not run:[/] {exc}", highlight=False)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return guarded_main(lambda info: run_and_report(args, info))


def run_and_report(args: argparse.Namespace, info: dict[str, str]) -> None:
    results = run(args)
    report(results, args.client)
    if args.json:
        figures = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": info,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        console.print(f"raw figures in {args.json}")


if __name__ == "__main__":
    sys.exit(main())

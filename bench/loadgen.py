"""The load generator every HTTP benchmark uses: cheap keep-alive HTTP/1.1 clients that keep a given
concurrency for a given time (or a given number of requests), and the latency summary they report.

Run alone, it loads one URL and prints p50/p90/p99/max and throughput:

    .venv/bin/python bench/loadgen.py http://127.0.0.1:4567/api/v3/vm -c 32 -t 10 [--method GET] [--warmup 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

REQUEST_TIMEOUT = 10.0  # seconds
#: what a failed request raises in a client: each counts as an error of its class, not a crash
REQUEST_ERRORS = (OSError, TimeoutError, ValueError, EOFError, asyncio.LimitOverrunError)

#: (status, body) of one reply
Reply = tuple[int, bytes]


class RawConnection:
    """One keep-alive HTTP/1.1 connection that speaks just enough HTTP for the benchmarks.

    On a 2-core machine the client shares the CPU with the server it measures, so it must be cheap:
    this costs ~0.15 ms of CPU per checkout, httpx ~0.8 ms (and a shared ``httpx.AsyncClient`` ~2 ms
    at 32 connections, encode/httpx#3215).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def to(cls, url: str) -> RawConnection:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80)

    async def request(self, method: str, path: str) -> Reply:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        length = "Content-Length: 0\r\n" if method in ("POST", "PUT") else ""
        try:
            self._writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{length}\r\n".encode())
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


class Budget:
    """When the clients stop: after ``requests`` requests in all (None: no limit) or ``seconds``, whichever
    comes first. With no request limit the clients keep the concurrency for exactly that long."""

    def __init__(self, requests: int | None, seconds: float) -> None:
        self.left = requests
        self.deadline = time.monotonic() + seconds

    def take(self) -> bool:
        if time.monotonic() > self.deadline or self.left == 0:
            return False
        if self.left is not None:
            self.left -= 1
        return True


@dataclass
class Recorder:
    """What the clients of one run saw: every reply's latency, and the failures by kind."""

    latencies: list[float] = field(default_factory=list)  # seconds, every reply that arrived
    errors: Counter[str] = field(default_factory=Counter)  # "HTTP 503", "TimeoutError", ...
    samples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {' '.join(detail.split())[:300]}")

    async def timed(self, call: Callable[[], Awaitable[Reply]]) -> Reply | None:
        """``call()`` timed and recorded; None when it raised (counted as an error of its class)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                reply = await call()
        except REQUEST_ERRORS as exc:
            self.error(type(exc).__name__, str(exc))
            return None
        self.latencies.append(time.perf_counter() - started)
        return reply


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence; NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@dataclass
class Summary:
    """Latency (ms) and throughput of one timed phase."""

    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @classmethod
    def of(cls, latencies: Sequence[float], seconds: float, errors: Counter[str] | None = None) -> Summary:
        ms = sorted(v * 1000 for v in latencies)
        return cls(
            requests=len(ms),
            seconds=seconds,
            throughput=len(ms) / seconds if seconds > 0 else 0.0,
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            max_ms=ms[-1] if ms else math.nan,
            errors=dict(errors or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def hold(url: str, method: str, path: str, concurrency: int, budget: Budget) -> tuple[Recorder, float]:
    """``concurrency`` clients, each on its own connection, sending ``method path`` until the budget is
    spent; any reply but 2xx counts as an error. Returns what they saw and the wall time."""
    recorder = Recorder()
    conns = [RawConnection.to(url) for _ in range(concurrency)]

    async def client(conn: RawConnection) -> None:
        while budget.take():
            reply = await recorder.timed(lambda: conn.request(method, path))
            if reply is not None and not 200 <= reply[0] < 300:
                recorder.error(f"HTTP {reply[0]}", reply[1].decode(errors="replace"))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    return recorder, time.perf_counter() - started


async def measure(url: str, method: str, path: str, concurrency: int, seconds: float, warmup: float) -> Summary:
    """Warm up for ``warmup`` seconds, then keep ``concurrency`` requests in flight for ``seconds``."""
    if warmup > 0:
        await hold(url, method, path, concurrency, Budget(None, warmup))
    recorder, wall = await hold(url, method, path, concurrency, Budget(None, seconds))
    return Summary.of(recorder.latencies, wall, recorder.errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("url", help="http://host:port/path")
    parser.add_argument("-c", "--concurrency", type=int, default=32, help="clients, one connection each (32)")
    parser.add_argument("-t", "--seconds", type=float, default=10.0, help="how long to keep them busy (10)")
    parser.add_argument("--method", default="GET", help="HTTP method (GET)")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds first (1)")
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.scheme != "http" or args.concurrency < 1 or args.seconds <= 0:
        parser.error("an http:// URL, a concurrency of at least 1 and a positive duration are needed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    s = asyncio.run(measure(args.url, args.method.upper(), path, args.concurrency, args.seconds, args.warmup))
    print(
        f"{args.method.upper()} {args.url}, concurrency {args.concurrency}, {s.seconds:.1f}s: {s.requests} replies, "
        f"{s.throughput:,.0f}/s; p50 {s.p50_ms:.2f} ms, p90 {s.p90_ms:.2f}, p99 {s.p99_ms:.2f}, max {s.max_ms:.2f}; "
        f"errors {s.errors or 0}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

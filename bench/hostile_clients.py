"""A real ``vmpooler api`` under hostile clients (issue 14 items 4 and 5): memory while 20 clients send
200 MB bodies, and ``GET /status`` latency while 300 clients send their headers a byte at a time.

Starts a private redis-server and ``vmpooler api`` (``api_header_timeout: 3`` so the slow clients are cut
off within the run), then:

* **body flood**: 20 clients at once announce a 200 MB body (``Content-Length``, then again chunked) and
  send it until the server answers; reports the server's resident-memory growth over rest (sampled every
  5 ms) and how much each client got to send before its 413;
* **slowloris**: 300 connections drip a request head a byte every 0.2 s; reports ``GET /status``
  latency meanwhile (20 requests) and the seconds until every slow connection was closed.

A benchmark, not a test (tests/security/ asserts the bounds): it exits 0 whatever the figures.

    .venv/bin/python bench/hostile_clients.py
"""

from __future__ import annotations

import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from common import (
    Children,
    argument_parser,
    console,
    guarded_main,
    memory_mib,
    start_redis,
    start_vmpooler,
    write_config,
)

BODY = 200 * 1024 * 1024
PIECE = b"x" * 65536
GIVE_UP = 32 * 1024 * 1024  # a server that reads bodies must not be handed 4 GB by the benchmark


def flood_one(port: int, chunked: bool) -> tuple[int, int]:
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % BODY
    head = b"POST /api/v3/vm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + framing + b"\r\n\r\n"
    piece = b"%x\r\n%s\r\n" % (len(PIECE), PIECE) if chunked else PIECE
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        while sent < min(BODY, GIVE_UP) and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(PIECE)
        try:
            reply = sock.recv(64)
        except OSError:
            reply = b""
    return (int(reply.split()[1]) if reply.startswith(b"HTTP/1.1 ") else 0), sent


def body_flood(port: int, pid: int, chunked: bool) -> dict[str, Any]:
    rest = memory_mib(pid)["rss_mib"]
    peak, sampling = rest, True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, memory_mib(pid)["rss_mib"])
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[tuple[int, int]] = []
    clients = [threading.Thread(target=lambda: results.append(flood_one(port, chunked))) for _ in range(20)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    sampling = False
    sampler.join()
    return {
        "growth_mib": peak - rest,
        "statuses": sorted({status for status, _ in results}),
        "max_sent_mib": max(sent for _, sent in results) / 2**20,
    }


def slowloris(url: str, port: int) -> dict[str, Any]:
    head = b"GET /api/v3/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    opened, dripping = time.monotonic(), True

    def drip() -> None:
        for i in range(len(head)):
            if not dripping:
                return
            for sock in socks:
                try:
                    sock.send(head[i : i + 1])
                except OSError:
                    pass
            time.sleep(0.2)

    dripper = threading.Thread(target=drip)
    dripper.start()
    time.sleep(1)
    latencies = []
    for _ in range(20):
        started = time.monotonic()
        httpx.get(f"{url}/api/v3/status", timeout=10)
        latencies.append(time.monotonic() - started)
    closed_after = float("nan")
    while time.monotonic() - opened < 30:
        if all(_closed(sock) for sock in socks):
            closed_after = time.monotonic() - opened
            break
        time.sleep(0.1)
    dripping = False
    dripper.join()
    for sock in socks:
        sock.close()
    return {
        "status_p50_ms": statistics.median(latencies) * 1000,
        "status_max_ms": max(latencies) * 1000,
        "all_closed_after_s": closed_after,
    }


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while data := sock.recv(65536):
            del data
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def work(_: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="vmpooler-bench-hostile-") as tmp, Children() as children:
        workdir = Path(tmp)
        redis_port, _ = start_redis(children, workdir)
        config = write_config(workdir / "hostile.yaml", redis_port, [("deb", 1)], config={"api_header_timeout": 3})
        url, proc = start_vmpooler(children, "api", config, workdir)
        port = int(url.rsplit(":", 1)[1])
        for _ in range(5):
            httpx.post(f"{url}/api/v3/vm", json={"deb": 1})
        table = Table(title="vmpooler api under hostile clients")
        table.add_column("scenario")
        table.add_column("measured")
        for chunked in (False, True):
            found = body_flood(port, proc.pid, chunked)
            table.add_row(
                f"20 x 200 MB bodies ({'chunked' if chunked else 'Content-Length'})",
                f"RSS +{found['growth_mib']:.1f} MiB; replies {found['statuses']}; "
                f"at most {found['max_sent_mib']:.1f} MiB sent before the reply",
            )
        slow = slowloris(url, port)
        table.add_row(
            "300 slow-header connections (timeout 3 s)",
            f"GET /status p50 {slow['status_p50_ms']:.0f} ms, max {slow['status_max_ms']:.0f} ms; "
            f"all closed after {slow['all_closed_after_s']:.1f} s",
        )
        console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    argument_parser(__doc__).parse_args(argv)  # no flags of its own: --help, and a refusal of unknown ones
    return guarded_main(work)


if __name__ == "__main__":
    sys.exit(main())

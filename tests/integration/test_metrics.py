"""Metrics on real sockets: Prometheus scraped and parsed, StatsD datagrams and Graphite lines captured."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.pools import dummy, run_until
from tests.support.servers import ApiThread
from tests.support.waiting import until_sync
from vmpooler.config import Settings, parse_settings
from vmpooler.logs import JsonFormatter, request_id
from vmpooler.manager.loop import Manager
from vmpooler.metrics import build_metrics
from vmpooler.states import VMState
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store


class UdpCatcher:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    def drain(self, seconds: float = 1.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.lines.append(self.sock.recv(65535).decode())
            except TimeoutError:
                continue
        return self.lines


class TcpCatcher:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.data = b""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.server.accept()
            while chunk := conn.recv(65535):
                self.data += chunk

    def lines(self) -> list[str]:
        return self.data.decode().splitlines()


def metric_settings(statsd: int | None = None, graphite: int | None = None) -> Settings:
    raw: dict[str, object] = {
        "config": {"check_loop_delay_min": 0.05},
        "pools": [{"name": "deb", "template": "t", "size": 2}],
    }
    if statsd:
        raw["statsd"] = {"server": "127.0.0.1", "port": statsd, "prefix": "vmp"}
    if graphite:
        raw["graphite"] = {"server": "127.0.0.1", "port": graphite, "prefix": "vmp"}
    settings, _ = parse_settings(raw, env={})
    return settings


@pytest.fixture
def catchers() -> Iterator[tuple[UdpCatcher, TcpCatcher]]:
    yield UdpCatcher(), TcpCatcher()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_prometheus_statsd_and_graphite_at_once(
    redis_port: int, store: Store, inventory_file: Path, catchers: tuple[UdpCatcher, TcpCatcher]
) -> None:
    udp, tcp = catchers
    settings = metric_settings(statsd=udp.port, graphite=tcp.port)
    metrics = build_metrics(settings)
    manager = Manager(settings, store, {"dummy": dummy(inventory_file)}, ready_poll_interval=0.02, metrics=metrics)

    async def full() -> bool:
        return (await store.counts(["deb"]))["deb"][VMState.READY] == 2

    await run_until(manager, full)
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v3/vm/deb+deb").status_code == 200
        assert client.post("/api/v3/vm/deb").status_code == 503
        assert client.post("/api/v3/vm/nope").status_code == 404
        scraped = samples(client.get("/prometheus").text)
    assert scraped[("vmpooler_checkouts_total", (("pool", "deb"), ("result", "success")))] == 2
    assert scraped[("vmpooler_checkouts_total", (("pool", "deb"), ("result", "empty")))] == 1
    assert scraped[("vmpooler_checkouts_total", (("pool", "unknown"), ("result", "invalid")))] == 1
    assert scraped[("vmpooler_vms", (("pool", "deb"), ("state", "running")))] == 2  # read from Redis
    route = ("vmpooler_http_requests_total", (("method", "POST"), ("route", "/api/v3/vm/{spec}"), ("status", "200")))
    assert scraped[route] == 1
    # the manager's own events went to every sink it was given
    await manager.run_once()
    statsd = udp.drain(1.5)
    assert any(line.startswith("vmp.time_to_ready_state.deb:") and line.endswith("|ms") for line in statsd)
    assert "vmp.ready.deb:0|g" in statsd

    def flushed(lines: list[str]) -> bool:
        return any(line.startswith("vmp.ready.deb ") for line in lines)

    until_sync(tcp.lines, "graphite's vmp.ready.deb line", done=flushed, timeout=5, pause=0.1)
    assert any(line.startswith("vmp.vmpooler_clone.deb ") for line in tcp.lines())
    ts = int(tcp.lines()[0].split()[-1])
    assert abs(ts - time.time()) < 60
    prom = samples(
        metrics.sinks[0].registry
        and __import__("prometheus_client").generate_latest(metrics.sinks[0].registry).decode()
    )  # type: ignore[attr-defined]
    assert prom[("vmpooler_boot_seconds_count", (("pool", "deb"),))] == 2


def test_request_ids_are_echoed_and_logged(redis_port: int, caplog: pytest.LogCaptureFixture) -> None:
    settings = metric_settings()
    settings.config.request_logger = True
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        with caplog.at_level(logging.INFO, logger="vmpooler.api.requests"):
            given = client.get("/api/v3/status", headers={"X-Request-Id": "abc123"})
            fresh = client.get("/api/v3/status")
        assert given.headers["x-request-id"] == "abc123"
        assert len(fresh.headers["x-request-id"]) == 16
    assert any("GET /api/v3/status -> 200" in r.getMessage() for r in caplog.records)


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("vmpooler.api", logging.INFO, __file__, 1, "checked out %s", ("vm1",), None)
    token = request_id.set("rid-1")
    record.request_id = request_id.get()
    request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "checked out vm1" and line["request_id"] == "rid-1" and line["level"] == "INFO"


def test_a_dead_statsd_or_graphite_never_fails_a_request(redis_port: int) -> None:
    settings = metric_settings(statsd=free_port(), graphite=free_port())
    with ApiThread(settings, redis_port) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/api/v3/status").status_code == 200
        assert client.post("/api/v3/vm/deb").status_code == 503


def test_log_lines_are_formatted_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from vmpooler.logs import setup_logging\n"
        f"setup_logging(logging.INFO, 'plain', {str(tmp_path / 'out.log')!r})\n"
        "logging.getLogger('vmpooler.manager').info('pool p vm v: pending -> ready')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30, capture_output=True)
    line = (tmp_path / "out.log").read_text().strip()
    assert line.endswith("INFO vmpooler.manager: pool p vm v: pending -> ready"), line
    assert line.count("INFO") == 1

"""`vmpooler serve` as a supervised family: the manager in a child of its own, its counters on the API's
/prometheus, a killed child restarted, and nothing left running after SIGTERM or a kill -9 of the parent."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.processes import VmpoolerProcess, wait_until, write_config


def children_of(pid: int) -> dict[int, str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return {int(pid): args for pid, args in (line.strip().split(" ", 1) for line in out.stdout.splitlines())}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return b") Z" not in stat  # a zombie has ended


def start_serve(tmp_path: Path) -> tuple[VmpoolerProcess, dict[int, str]]:
    raw = {
        ":providers:": {":dummy:": {"ready_delay": 0.1}},
        ":config:": {"check_loop_delay_min": 0.2},
        ":pools:": [{"name": "deb", "template": "t", "size": 3}],
    }
    serve = VmpoolerProcess("serve", write_config(tmp_path / "vmpooler.yaml", raw), tmp_path / "logs").start()
    # the API worker, the manager and the embedded redis-server
    wait_until(lambda: len(children_of(serve.pid)) == 3, 15, what="three children")
    return serve, children_of(serve.pid)


def ready(url: str) -> int:
    return int(httpx.get(f"{url}/api/v3/status").json()["pools"]["deb"]["ready"])


def sample(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/prometheus").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_the_manager_runs_apart_counts_on_prometheus_and_is_restarted(tmp_path: Path) -> None:
    serve, children = start_serve(tmp_path)
    try:
        url = serve.url
        wait_until(lambda: ready(url) == 3, 30, what="the pool full")
        # clones are counted only by the manager's process; the API process serves them
        clones = 'vmpooler_clone_seconds_count{pool="deb"}'
        wait_until(lambda: sample(url, clones) >= 3, 10, what="the manager's clones on /prometheus")
        managers = [pid for pid, args in children.items() if "redis-server" not in args]
        api_pids = {
            int(line.split("pid ")[1].rstrip(")")) for line in serve.log_text().splitlines() if "API listening" in line
        }
        (manager,) = set(managers) - api_pids
        os.kill(manager, signal.SIGKILL)
        wait_until(
            lambda: len(children_of(serve.pid)) == 3 and manager not in children_of(serve.pid), 10, what="a new manager"
        )
        # the new manager works: a checkout is replaced, and the counts of the dead one are kept
        assert httpx.post(f"{url}/api/v3/vm/deb").status_code == 200
        wait_until(lambda: ready(url) == 3, 30, what="the pool refilled by the new manager")
        wait_until(lambda: sample(url, clones) >= 4, 10, what="clones of both managers")
        assert "manager" in serve.log_text() and "died after" in serve.log_text()
        assert serve.stop(signal.SIGTERM) == 0
        wait_until(lambda: not any(alive(pid) for pid in children_of(serve.pid) or children), 10, what="all stopped")
    finally:
        serve.stop()


def test_kill9_of_the_parent_leaves_no_orphan(tmp_path: Path) -> None:
    serve, children = start_serve(tmp_path)
    try:
        assert children, "serve started no children"
        serve.kill()
        wait_until(lambda: not any(alive(pid) for pid in children), 15, what="every child gone")
        assert [pid for pid in children if alive(pid)] == []
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_thousand_pools_never_run_out_of_redis_connections(tmp_path: Path) -> None:
    """Every pool loop's first pass and every clone at once: calls queue for the pooled connections
    (each held one round trip) but none gives up with "No connection available"."""
    pools = [{"name": f"p{i:04d}", "template": "t", "size": 1} for i in range(1000)]
    raw = {":providers:": {":dummy:": {"ready_delay": 0.1}}, ":config:": {"task_limit": 500}, ":pools:": pools}
    serve = VmpoolerProcess("serve", write_config(tmp_path / "vmpooler.yaml", raw), tmp_path / "logs").start()
    try:

        def filled() -> bool:
            status = httpx.get(f"{serve.url}/api/v3/status", timeout=30).json()
            return sum(int(p["ready"]) for p in status["pools"].values()) == len(pools)

        wait_until(filled, 240, pause=2, what="every pool filled")
        assert serve.stop() == 0
        log = serve.log_text()
        starved = [line for line in log.splitlines() if "No connection available" in line]
        paused = [line for line in log.splitlines() if "Redis unavailable" in line]
        assert starved == [] and paused == [], (starved + paused)[:3]
    finally:
        serve.stop()

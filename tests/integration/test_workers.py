"""`--workers N`: several API processes on one port, and the manager beside them, stopped by one signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from tests.support.servers import wait_for_port
from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_serve_with_two_api_workers(tmp_path: Path) -> None:
    config = tmp_path / "vmpooler.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                ":providers:": {":dummy:": {"filename": str(tmp_path / "inv.json"), "ready_delay": 0.2}},
                ":config:": {"check_loop_delay_min": 0.2},
                ":pools:": [{"name": "deb", "template": "t", "size": 6}],
            }
        )
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            VMPOOLER,
            "serve",
            "-c",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / "state"),
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, timeout=30)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/api/v3/status").json()["pools"]["deb"]["ready"] < 6:
            assert time.monotonic() < deadline, "the manager did not fill the pool"
            time.sleep(0.2)
        # two workers, the manager and the embedded redis-server are the parent's children
        children = children_of(proc.pid)
        assert len(children) == 4
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: httpx.post(f"{url}/api/v3/vm/deb"), range(6)))
        hosts = [r.json()["deb"]["hostname"] for r in replies]
        assert all(r.status_code == 200 for r in replies) and len(set(hosts)) == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        time.sleep(0.5)
        alive = [
            pid
            for pid in children
            if Path(f"/proc/{pid}").exists() and b") Z" not in Path(f"/proc/{pid}/stat").read_bytes()
        ]
        assert alive == [], "a worker or the embedded redis-server outlived the service"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()

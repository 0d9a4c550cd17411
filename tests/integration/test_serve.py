"""The whole service as users run it: `vmpooler serve` in its own process, embedded Redis, real signals."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.servers import wait_for_port
from tests.support.waiting import until_sync
from vmpooler.providers.dummy_inventory import read_inventory
from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
SIZES = {"alpha": 4, "beta": 3}


def write_config(tmp: Path, **dummy: Any) -> Path:
    config = {
        ":providers:": {
            ":dummy:": {"filename": str(tmp / "inventory.json"), "ready_delay": 0.3, "createvm_max_time": 0.6, **dummy}
        },
        ":dns_configs:": {":ex:": {"dns_class": "dynamic-dns", "domain": "test.example"}},
        ":config:": {"check_loop_delay_min": 0.2, "check_loop_delay_max": 1, "task_limit": 3, "timeout": 1},
        ":pools:": [
            {"name": name, "template": f"templates/{name}", "size": size, "dns_plugin": "ex"}
            for name, size in SIZES.items()
        ],
    }
    path = tmp / "vmpooler.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Service:
    def __init__(self, config: Path, state: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(state.parent / f"serve-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                VMPOOLER,
                "serve",
                "-c",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--state-dir",
                str(state),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process, timeout=30)

    def status(self) -> dict[str, Any]:
        reply: dict[str, Any] = httpx.get(f"{self.url}/api/v3/status", timeout=10).json()
        return reply

    def wait_full(self, timeout: float = 30) -> dict[str, Any]:
        def full(pools: dict[str, Any]) -> bool:
            return all(pools[p]["ready"] == size and pools[p]["pending"] == 0 for p, size in SIZES.items())

        pools: dict[str, Any] = until_sync(
            lambda: self.status()["pools"], "every pool full", done=full, timeout=timeout, pause=0.2
        ).value
        return pools

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(30)
        self.log.close()
        return code


@pytest.fixture
def service_paths(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    state = tmp_path / "state"
    yield write_config(tmp_path), state
    # nothing may outlive a test: no embedded redis-server left behind
    pidfile = state / "redis" / "redis.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        time.sleep(0.5)
        assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split()[2]


def inventory(tmp: Path) -> dict[str, list[str]]:
    return {pool: sorted(vms) for pool, vms in read_inventory(tmp / "inventory.json").items()}


def test_readme_session_against_a_served_instance(service_paths: tuple[Path, Path]) -> None:
    config, state = service_paths
    service = Service(config, state)
    try:
        service.wait_full()
        client = httpx.Client(base_url=service.url, timeout=10)
        assert client.get("/vm").json() == ["alpha", "beta"]
        body = client.post("/vm", content=b'{"alpha":"2","beta":"1"}').json()
        assert body["ok"] is True and len(body["alpha"]["hostname"]) == 2 and body["domain"] == "test.example"
        host = body["beta"]["hostname"]
        assert client.put(f"/vm/{host}", content=b'{"lifetime":"2"}').json() == {"ok": True}
        info = client.get(f"/api/v3/vm/{host}").json()[host]
        assert info["lifetime"] == 2 and info["state"] == "running" and info["fqdn"] == f"{host}.test.example"
        assert client.delete(f"/vm/{host}").json() == {"ok": True}
        # the manager destroys the returned VM and refills both pools
        deadline = time.monotonic() + 20
        while host in inventory(config.parent).get("beta", []) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert host not in inventory(config.parent)["beta"]
        pools = service.wait_full()
        assert pools["alpha"]["running"] == 2
    finally:
        assert service.stop() == 0


@pytest.mark.slow
def test_kill_9_mid_fill_then_restart_leaks_nothing(service_paths: tuple[Path, Path]) -> None:
    config, state = service_paths
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "5")))
    for _round in range(3):
        service = Service(config, state)
        time.sleep(rng.uniform(0.3, 1.5))  # somewhere in clone, boot or destroy
        service.stop(signal.SIGKILL)
    service = Service(config, state)
    try:
        pools = service.wait_full(timeout=60)
        # one more pass after full, so leaks found by inventory are settled
        time.sleep(2.5)
        pools = service.wait_full(timeout=30)
        held = inventory(config.parent)
        client = httpx.Client(base_url=service.url, timeout=10)
        for pool, size in SIZES.items():
            assert pools[pool]["ready"] == size
            assert len(held.get(pool, [])) == size, (
                f"{pool}: provider holds {held.get(pool)}; Redis knows {pools[pool]}"
            )
            for name in held[pool]:
                reply = client.get(f"/api/v3/vm/{name}")
                assert reply.status_code == 200 and reply.json()[name]["state"] == "ready"
    finally:
        assert service.stop() == 0

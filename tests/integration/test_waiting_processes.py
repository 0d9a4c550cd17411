"""Waiting checkouts across two API processes and two managers (real processes, the dummy provider): every
request is served in its turn as the managers refill the pool, and no VM is handed out twice."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.processes import VmpoolerProcess, write_config
from tests.support.servers import wait_for_port
from tests.support.waiting import until_sync

REQUESTS = 10
SIZE = 2


def test_waiting_checkouts_across_two_apis_and_two_managers(redis_port: int, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "vmpooler.yaml",
        {
            ":redis:": {"server": "127.0.0.1", "port": redis_port},
            ":providers:": {
                ":dummy:": {"filename": str(tmp_path / "inventory.json"), "createvm_max_time": 0.3, "ready_delay": 0.2}
            },
            ":config:": {"check_loop_delay_min": 0.2, "check_loop_delay_max": 1, "task_limit": 4},
            ":pools:": [
                {"name": "deb", "template": "t/deb", "size": SIZE},
                {"name": "win", "template": "t/win", "size": 1},
            ],
        },
    )
    logs = tmp_path / "logs"
    managers = [VmpoolerProcess("manager", config, logs, name=f"manager-{n}") for n in (1, 2)]
    apis = [VmpoolerProcess("api", config, logs) for _ in (1, 2)]
    try:
        for process in [*managers, *apis]:
            process.start(wait=False)  # side by side: each takes seconds to import on a loaded machine
        for api in apis:
            wait_for_port(api.port, api.process, timeout=90)
        status = f"{apis[0].url}/api/v3/status"
        until_sync(
            lambda: httpx.get(status).json()["pools"]["deb"]["ready"] == SIZE,
            "deb filled",
            timeout=60,
            retry_on=(httpx.TransportError,),
        )

        def check_out(n: int) -> httpx.Response:
            url = f"{apis[n % 2].url}/api/v3/vm/deb"
            return httpx.post(url, headers={"Prefer": "wait=60"}, timeout=90)

        # five times the pool's size at once, half through each API: the managers refill it as it empties
        started = time.monotonic()
        with ThreadPoolExecutor(REQUESTS) as pool:
            replies = list(pool.map(check_out, range(REQUESTS)))
        print(f"{REQUESTS} waiting checkouts served in {time.monotonic() - started:.1f} s")
        assert [r.status_code for r in replies] == [200] * REQUESTS, [r.text for r in replies if r.status_code != 200]
        hosts = [r.json()["deb"]["hostname"] for r in replies]
        assert len(set(hosts)) == REQUESTS, "a VM was handed out twice"
        assert max(r.json()["waited"] for r in replies) > 0  # some did wait for a clone
        assert {r.headers["Preference-Applied"] for r in replies} == {"wait=60"}
        for api in apis:
            queue = httpx.get(f"{api.url}/api/v3/vm/deb/queue").json()
            assert queue["waiting"] == 0
    finally:
        for process in [*apis, *managers]:
            process.send(signal.SIGTERM)
        for process in [*apis, *managers]:
            process.stop()

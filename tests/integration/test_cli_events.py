"""``vmpooler events`` and ``vmpooler audit`` as users run them: the installed command, a real server."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.processes import VmpoolerProcess, write_config
from tests.support.servers import ApiThread
from tests.support.waiting import until_sync
from vmpooler.config import Settings, parse_settings
from vmpooler.store.redis import Store

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


def settings() -> Settings:
    raw = {"config": {"events_keepalive_seconds": 0.5}, "pools": [{"name": "deb", "template": "t/deb", "size": 5}]}
    parsed, _ = parse_settings(raw, env={})
    return parsed


def environment(url: str, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VMPOOLER_")}
    return {**clean, "VMPOOLER_URL": url, "VMPOOLER_CLIENT_CONFIG": str(tmp_path / "client.yaml")}


async def make_ready(store: Store, *names: str) -> None:
    for name in names:
        assert await store.create_pending("deb", name, {})
        assert await store.mark_ready("deb", name, time.time(), 1.0)


async def test_events_prints_what_happened_and_audit_needs_nothing_without_auth(
    store: Store, redis_port: int, tmp_path: Path
) -> None:
    await make_ready(store, "vm1")
    with ApiThread(settings(), redis_port) as api:
        env = environment(api.url, tmp_path)
        done = run_cli(env, "events", "--json", "--type", "vm.ready,vm.cloned")
        assert done.returncode == 0, done.stderr
        seen = [json.loads(line) for line in done.stdout.splitlines()]
        assert [(e["type"], e["vm"]) for e in seen] == [("vm.cloned", "vm1"), ("vm.ready", "vm1")]
        listed = run_cli(env, "audit", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr


@pytest.mark.slow  # starts `vmpooler api` twice (kill -9 between)
async def test_follow_resumes_after_the_api_process_was_killed_missing_nothing(
    store: Store, redis_port: int, tmp_path: Path
) -> None:
    await make_ready(store, "vm1", "vm2", "vm3")
    raw = {
        ":redis:": {"server": "127.0.0.1", "port": redis_port},
        ":config:": {"events_keepalive_seconds": 0.5},
        ":pools:": [{"name": "deb", "template": "t/deb", "size": 5}],
    }
    api = VmpoolerProcess("api", write_config(tmp_path / "vmpooler.yaml", raw), tmp_path / "logs").start()
    follower = start_cli(environment(api.url, tmp_path), "events", "--follow", "--json", "--type", "vm.checked_out")
    seen: list[dict[str, Any]] = []
    try:
        # it follows from "now": the first checkout only once it listens (a stream takes a slot for the run)
        until_sync(lambda: following(redis_port), "the follower connected", timeout=20)
        await store.checkout([["deb"]], time.time())
        seen.append(read_event(follower))
        api.kill()  # kill -9: the stream breaks mid-way
        await store.checkout([["deb"]], time.time())  # while no API runs
        api.start()
        seen.append(read_event(follower))
        await store.checkout([["deb"]], time.time())
        seen.append(read_event(follower))
    finally:
        follower.terminate()
        _, errors = follower.communicate(timeout=10)
        api.stop()
    assert sorted(e["vm"] for e in seen) == ["vm1", "vm2", "vm3"]
    assert len({e["id"] for e in seen}) == 3
    assert "resuming" in errors


def following(redis_port: int) -> bool:
    """Is a stream blocked in XREAD on the Redis (the API serves a follower)?"""
    client = redis.Redis(port=redis_port)
    try:
        return any(c.get("cmd") == "xread" for c in client.client_list())
    finally:
        client.close()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VMPOOLER, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([VMPOOLER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def streams(api: ApiThread) -> int:
    server = api._server
    assert server is not None
    app: Any = server.config.app
    count: int = app.state.event_streams.active
    return count


def read_event(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    # never hang the suite: an event must come within 20 s
    ready, _, _ = select.select([process.stdout], [], [], 20)
    assert ready, "no event from the follower within 20 s"
    line = process.stdout.readline()
    assert line, process.stderr.read() if process.stderr else "no output"
    event: dict[str, Any] = json.loads(line)
    return event

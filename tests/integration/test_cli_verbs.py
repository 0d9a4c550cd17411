"""vmfloaty's habits and follow-ups in the `vmpooler` command, against the real API over a real Redis:
`ssh`, `delete a,b`, `list FILTER`, `list --active` with expiry, `query` with owner and hours,
`ondemand status|cancel` and Ctrl-C during `--wait`, `status` with degraded pools, and errors in CLI terms.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli_client import VMPOOLER, Outcome, as_json, ok, run, run_process, token_for
from tests.integration.test_client import DOMAIN, fill
from tests.support.servers import ApiThread, make_store
from vmpooler.client import Client
from vmpooler.config import Settings, parse_settings
from vmpooler.states import VMState
from vmpooler.store.redis import Store


def settings() -> Settings:
    raw = {
        "auth": {"provider": "dummy"},
        "config": {"vm_lifetime_auth": 2},
        "dns_configs": {"ex": {"domain": DOMAIN}},
        "pools": [
            {"name": "deb", "alias": ["debian"], "template": "t/deb", "size": 5, "dns_plugin": "ex"},
            {"name": "cent", "template": "t/cent", "size": 0, "dns_plugin": "ex"},
        ],
    }
    parsed, _ = parse_settings(raw, env={})
    return parsed


@pytest.fixture
def server(redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(settings(), redis_port) as api:
        yield api


@pytest.fixture
def env(server: ApiThread, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VMPOOLER_")}
    return {
        **clean,
        "HOME": str(tmp_path),  # no ~/.vmpooler.yaml nor ~/.vmfloaty.yml but the test's
        "VMPOOLER_URL": server.url,
        "VMPOOLER_TOKEN": token_for(server),
    }


async def test_vmfloaty_habits(store: Store, env: dict[str, str]) -> None:
    await fill(store, "deb", 3)
    assert ok(env, "list", "en").splitlines() == ["cent"]  # a filter on the pool names
    assert ok(env, "--version").startswith("vmpooler ")

    got = as_json(env, "get", "deb=2")
    host = got[0]["fqdn"]
    query = ok(env, "query", host)
    assert "owner: alice" in query and "pool: deb" in query and "lifetime: 2 h" in query
    assert re.search(r"^remaining: [12]\.\d+ h$", query, re.MULTILINE), query
    active = ok(env, "list", "--active").splitlines()
    assert len(active) == 2
    assert all(re.fullmatch(rf"deb-vm\d\.{DOMAIN} \([12]\.\d+ h left, expires \S+\)", line) for line in active), active

    both = ",".join(vm["hostname"] for vm in got)
    assert ok(env, "delete", both).splitlines() == [f"returned {vm['hostname']}" for vm in got]
    assert await store.members("deb", VMState.RUNNING) == set()


async def test_ssh_checks_out_from_a_pool_then_runs_ssh(store: Store, env: dict[str, str], tmp_path: Path) -> None:
    await fill(store, "deb", 1)
    recorded = tmp_path / "ssh-args"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
    fake_ssh.chmod(0o755)
    env["VMPOOLER_SSH"] = str(fake_ssh)

    from_pool = run_process(env, "ssh", "debian", "--ssh-key", "/keys/id", "--", "-p", "2222")
    assert from_pool.returncode == 0, from_pool.stderr
    fqdn = f"deb-vm0.{DOMAIN}"
    assert recorded.read_text().splitlines() == ["-i", "/keys/id", f"root@{fqdn}", "-p", "2222"]
    assert f"checked out {fqdn}" in from_pool.stderr
    assert await store.members("deb", VMState.RUNNING) == {"deb-vm0"}

    (tmp_path / ".vmpooler.yaml").write_text("ssh_user: admin\n")  # the user's own config file
    assert run_process(env, "ssh", "deb-vm0").returncode == 0  # a VM: no checkout
    assert recorded.read_text().splitlines() == [f"admin@{fqdn}"]
    missing = run_process(env, "ssh", "nothing")
    assert missing.returncode == 1 and "no VM or pool named 'nothing'; `vmpooler list`" in missing.stderr


async def test_errors_speak_cli(store: Store, env: dict[str, str]) -> None:
    await fill(store, "deb", 2)
    too_many = run(env, "get", "debian=50")
    assert too_many.returncode == 1
    assert "'debian' holds at most 5 VMs and 50 were asked" in too_many.stderr
    assert "`vmpooler ondemand debian=50`" in too_many.stderr
    short = run(env, "get", "deb=3")  # within the size: the pool is only short for now
    assert short.returncode == 1 and "try again shortly" in short.stderr

    del env["VMPOOLER_TOKEN"]
    no_token = run(env, "ondemand", "deb")
    assert no_token.returncode == 1
    assert "--token" in no_token.stderr and "`vmpooler token get`" in no_token.stderr
    assert "X-AUTH-TOKEN" not in no_token.stderr and "POST /" not in no_token.stderr

    for command in (["--help"], ["get", "--help"], ["list", "--help"], ["ondemand", "request", "--help"]):
        shown = ok(env, *command)
        assert not re.search(r"<\w[^>]*>", shown), shown  # no <str>, <bool>, <list[str]>, <path>


async def test_status_shows_degraded_pools_and_fails(store: Store, env: dict[str, str]) -> None:
    await fill(store, "deb", 5)
    await store.health.degrade("cent", "template t/cent not found", time.time(), time.time() + 60)
    result = run(env, "status")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "1 degraded pool: cent"
    assert lines[1].startswith("cent ") and lines[1].endswith("degraded: template t/cent not found")
    assert lines[2] == "deb ready=5/5 running=0 pending=0"
    assert json.loads(run(env, "status", "--json").stdout)["status"]["degraded"] == ["cent"]


def test_ondemand_status_and_cancel(server: ApiThread, env: dict[str, str]) -> None:
    rid = ok(env, "ondemand", "deb=2").strip()
    assert ok(env, "ondemand", "status", rid).splitlines() == ["deb ready=0/2"]
    assert as_json(env, "ondemand", "status", rid)["pending"] == {"deb": {"ready": 0, "pending": 2}}
    assert ok(env, "ondemand", "cancel", rid) == f"cancelled {rid}\n"
    gone = run(env, "ondemand", "status", rid)
    assert gone.returncode == 1 and "has been deleted" in gone.stderr
    unknown = run(env, "ondemand", "status", "nope")
    assert unknown.returncode == 1


def interrupt_waiting(env: dict[str, str], server: ApiThread, *extra: str) -> tuple[str, Outcome]:
    """Start `ondemand deb --wait` (no manager: it never gets ready), Ctrl-C it once it polls; returns the
    request id (found in Redis) and what the command said."""
    process = subprocess.Popen(
        [VMPOOLER, "ondemand", "deb", "--wait", "--interval", "0.05", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a suite started in the background (`make test &`) has SIGINT ignored, and a
        # child inherits that, so the Ctrl-C below would never arrive
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while not (claimed := asyncio.run(claim_new_requests(server.redis_port))):
        assert time.monotonic() < deadline and process.poll() is None, "the request never arrived"
        time.sleep(0.05)
    time.sleep(0.2)  # into the polling (a Ctrl-C earlier is handled the same way)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    return claimed[0], Outcome(process.returncode, stdout, stderr)


async def claim_new_requests(redis_port: int) -> list[str]:
    """The on-demand requests made since the last call (no manager runs here to claim them)."""
    store = make_store(redis_port)
    try:
        return await store.ondemand.claim_new()
    finally:
        await store.close()


def test_ctrl_c_during_wait_says_how_to_follow_up(server: ApiThread, env: dict[str, str]) -> None:
    rid, left = interrupt_waiting(env, server)
    assert left.returncode == 130
    assert f"`vmpooler ondemand status {rid}`" in left.stderr and f"`vmpooler ondemand cancel {rid}`" in left.stderr
    with Client(server.url, env["VMPOOLER_TOKEN"]) as client:
        assert client.request_status(rid).message is None  # it goes on

    rid, cancelled = interrupt_waiting(env, server, "--cancel-on-interrupt")
    assert cancelled.returncode == 130 and f"cancelled on-demand request {rid}" in cancelled.stderr
    with Client(server.url, env["VMPOOLER_TOKEN"]) as client:
        assert client.request_status(rid).message == "The request has been deleted"

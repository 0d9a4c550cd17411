"""The client verbs of `vmpooler` against the real API over a real Redis.

Most run in-process (typer's CliRunner, fast); exit codes, tracebacks and ``ondemand --wait`` (which needs the
manager running meanwhile) run the installed command as a subprocess, as users run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.test_client import ALICE, DOMAIN, client_settings, fill
from tests.support.pools import dummy, manager_for
from tests.support.servers import ApiThread
from vmpooler.cli.main import app
from vmpooler.client import Client
from vmpooler.states import VMState
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")


@pytest.fixture
def server(redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(client_settings(), redis_port) as api:
        yield api


@pytest.fixture
def env(server: ApiThread, tmp_path: Path) -> dict[str, str]:
    """The environment of a user with no config file whose VMPOOLER_URL points at the test server."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VMPOOLER_")}
    return {**clean, "VMPOOLER_URL": server.url, "VMPOOLER_CLIENT_CONFIG": str(tmp_path / "client.yaml")}


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run(env: dict[str, str], *args: str) -> Outcome:
    """In-process: ``env`` replaces every VMPOOLER_* variable of this process's environment."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("VMPOOLER_")}
    overrides |= {k: v for k, v in env.items() if k.startswith("VMPOOLER_")}
    result = CliRunner().invoke(app, list(args), env=overrides)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_process(env: dict[str, str], *args: str) -> Outcome:
    done = subprocess.run([VMPOOLER, *args], capture_output=True, text=True, timeout=60, check=False, env=env)
    return Outcome(done.returncode, done.stdout, done.stderr)


def ok(env: dict[str, str], *args: str) -> str:
    result = run(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(ok(env, *args, "--json"))


def token_for(server: ApiThread) -> str:
    with Client(server.url) as client:
        return client.create_token(*ALICE)


async def test_get_list_query_modify_delete(server: ApiThread, store: Store, env: dict[str, str]) -> None:
    await fill(store, "deb", 3)
    await fill(store, "cent", 1)
    env["VMPOOLER_TOKEN"] = token_for(server)

    got = json.loads(run_process(env, "get", "debian=2", "cent", "--json").stdout)  # the installed command
    assert sorted(vm["pool"] for vm in got) == ["cent", "debian", "debian"]
    assert all(vm["fqdn"] == f"{vm['hostname']}.{DOMAIN}" for vm in got)
    (plain,) = ok(env, "get", "deb").splitlines()  # not a terminal: one fqdn a line
    assert plain == f"deb-vm2.{DOMAIN}"
    assert ok(env, "list").splitlines() == ["deb", "cent"]
    active = as_json(env, "list", "--active")
    assert sorted(vm["hostname"] for vm in active) == ["cent-vm0", "deb-vm0", "deb-vm1", "deb-vm2"]

    host = got[0]["fqdn"]
    assert as_json(env, "query", host)["state"] == "running"
    ok(env, "modify", host, "--lifetime", "4", "--tag", "team=qa", "--tag", "job=42")
    changed = as_json(env, "query", host)
    assert changed["lifetime"] == 4 and changed["tags"] == {"team": "qa", "job": "42"}
    assert "team=qa" in ok(env, "query", host)

    snapshot = ok(env, "snapshot", host).strip()
    assert len(snapshot) == 32
    refused = run_process(env, "revert", host, "0123")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: VM ") and "has no snapshot '0123'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one line, no traceback

    assert ok(env, "delete", host) == f"returned {host}\n"
    returned = as_json(env, "delete", "--all")
    assert sorted(returned["returned"]) == ["cent-vm0", "deb-vm1", "deb-vm2"] and returned["failed"] == {}
    assert await store.members("deb", VMState.RUNNING) == set()

    status = as_json(env, "status")
    assert set(status["pools"]) == {"deb", "cent"} and status["status"]["ok"] is True
    assert "deb ready=0/0 running=0" in ok(env, "status")

    today = datetime.now(UTC).date().isoformat()
    summary = as_json(env, "summary", "--from", today)
    assert [day["date"] for day in summary["daily"]] == [today]
    assert summary["tag"]["team"] == {"qa": 1, "total": 1}  # the tag `modify` set above, and the total
    assert ok(env, "summary").startswith(f"{today} clones=")
    bad = run_process(env, "summary", "--from", "yesterday")
    assert bad.returncode != 0 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_token_commands(env: dict[str, str]) -> None:
    env |= {"VMPOOLER_USER": "alice", "VMPOOLER_PASSWORD": ALICE[1]}
    token = ok(env, "token", "get").strip()
    assert len(token) == 32
    assert as_json(env, "token", "status", "--token", token)["user"] == "alice"
    assert list(as_json(env, "token", "list")) == [token[:6] + "…"]
    wrong = run(env, "token", "get", "--password", "alice")  # dummy auth: password == user fails
    assert wrong.returncode == 1 and "wrong user name or password for 'alice'" in wrong.stderr
    assert ok(env, "token", "delete", token) == "deleted\n"
    gone = run(env, "token", "status", token)
    assert gone.returncode == 1 and "no such token" in gone.stderr


async def test_exit_codes(server: ApiThread, store: Store, env: dict[str, str], tmp_path: Path) -> None:
    unknown = run_process(env, "get", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == "error: unknown pool or alias 'nope'; `vmpooler list` lists the pools\n"
    assert "Traceback" in run_process(env, "get", "nope", "--debug").stderr

    elsewhere = f"http://127.0.0.1:{free_port()}"
    unreachable = run_process(env, "status", "--url", elsewhere)
    assert unreachable.returncode == 3 and unreachable.stderr.startswith(f"error: cannot reach vmpooler at {elsewhere}")

    assert run_process(env, "get", "deb=many").returncode == 2
    assert run(env, "modify", "somehost").returncode == 2  # nothing to change
    assert run(env, "delete").returncode == 2
    notoken = run(env, "list", "--active")
    assert notoken.returncode == 2 and "needs a token" in notoken.stderr


def test_config_file_and_services(server: ApiThread, env: dict[str, str]) -> None:
    config = Path(env["VMPOOLER_CLIENT_CONFIG"])
    del env["VMPOOLER_URL"]
    unused = f"http://127.0.0.1:{free_port()}"
    config.write_text(f"url: {unused}\nservices:\n  test:\n    url: {server.url}\n")
    assert run(env, "list").returncode == 3  # the top-level url
    assert ok(env, "list", "--service", "test").splitlines() == ["deb", "cent"]
    missing = run(env, "list", "--service", "prod")
    assert missing.returncode == 2 and "services.prod: no such service" in missing.stderr and "test" in missing.stderr
    config.write_text("url: [unclosed\n")
    assert run(env, "list").returncode == 2


async def test_ondemand_wait(server: ApiThread, store: Store, env: dict[str, str], inventory_file: Path) -> None:
    env["VMPOOLER_TOKEN"] = token_for(server)
    manager = manager_for(client_settings(), store, dummy(inventory_file))
    process = await asyncio.create_subprocess_exec(
        VMPOOLER,
        *("ondemand", "debian=2", "cent", "--wait", "--interval", "0.1", "--timeout", "30", "--json"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while process.returncode is None and time.monotonic() < deadline:
        await manager.run_once()
        await asyncio.sleep(0.05)
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    body = json.loads(stdout)
    assert body["ready"] is True and sorted(vm["pool"] for vm in body["vms"]) == ["cent", "debian", "debian"]
    for vm in body["vms"]:
        assert (await store.locate(vm["hostname"]))[1] == VMState.RUNNING

    rid = ok(env, "ondemand", "deb").strip()  # without --wait: the request id
    assert as_json(env, "ondemand", "deb")["request_id"] != rid


async def test_people_get_tables(
    server: ApiThread, store: Store, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmpooler.cli.client import session as client_session

    monkeypatch.setattr(client_session.Ctx, "people", property(lambda _self: True))
    await fill(store, "deb", 1)
    table = ok(env, "get", "deb")
    assert "┃ hostname" in table and f"deb-vm0.{DOMAIN}" in table
    assert "┃ pool " in ok(env, "status") and "deb" in ok(env, "list")

"""The operator commands (inventory, purge, migrate-from-ruby), the `disk` verb and shell completion, against a
real redis-server, the real API and the dummy provider's shared inventory file.

The commands run in-process (typer's CliRunner, in a worker thread because each runs its own event loop);
exit codes and tracebacks of the installed command run it as a subprocess, as operators do.
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
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from typer.testing import CliRunner

from tests.support.pools import dummy, manager_for, run_until, settle
from tests.support.servers import ApiThread
from vmpooler.auth.tokens import TokenService, hint, token_id
from vmpooler.cli.main import app
from vmpooler.client import Client
from vmpooler.config import Settings, load_settings
from vmpooler.domain import PoolTarget
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
RUBY_TIME = "%Y-%m-%d %H:%M:%S +0000"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def write_config(path: Path, redis_port: int, inventory: Path, **sections: Any) -> Path:
    """A config as an operator writes it: the original's symbol keys, a shared Redis, a dummy inventory file."""
    document: dict[str, Any] = {
        ":redis:": {"server": "127.0.0.1", "port": redis_port},
        ":providers:": {":dummy:": {"filename": str(inventory), "ready_delay": 0.05}},
        ":config:": {"check_loop_delay_min": 0.05},
        ":pools:": [
            {"name": "deb", "alias": ["debian"], "template": "t/deb", "size": 2, "provider": "dummy"},
            {"name": "cent", "template": "t/cent", "size": 1, "provider": "dummy"},
        ],
    }
    path.write_text(yaml.safe_dump(document | {f":{name}:": value for name, value in sections.items()}))
    return path


@pytest.fixture
def config(tmp_path: Path, redis_port: int, inventory_file: Path) -> Path:
    return write_config(tmp_path / "vmpooler.yaml", redis_port, inventory_file)


@pytest.fixture
def settings(config: Path) -> Settings:
    return load_settings(config, env={})[0]


async def run(*args: str) -> Outcome:
    """In-process, in a thread: the command runs its own event loop, which the test's loop cannot host."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("VMPOOLER_", "REDIS_"))}
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=clean)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_process(*args: str, cwd: Path | None = None) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VMPOOLER_", "REDIS_"))}
    done = subprocess.run([VMPOOLER, *args], capture_output=True, text=True, timeout=60, check=False, env=env, cwd=cwd)
    return Outcome(done.returncode, done.stdout, done.stderr)


async def record(store: Store, pool: str, name: str, state: VMState) -> None:
    """A VM in ``state`` (pending, ready, or a state ready leads to) the way the manager leaves it."""
    assert await store.create_pending(pool, name, {"clone": time.strftime(RUBY_TIME, time.gmtime())})
    if state is VMState.PENDING:
        return
    assert await store.mark_ready(pool, name, time.time(), 1.0)
    if state is not VMState.READY:
        assert await store.move(pool, name, VMState.READY, state, {"checkout": time.strftime(RUBY_TIME)})


# ---- inventory ------------------------------------------------------------------------------------------


async def test_inventory_lists_every_pool_with_its_vms_by_state(config: Path, store: Store) -> None:
    await record(store, "deb", "deb-a", VMState.READY)
    await record(store, "deb", "deb-b", VMState.RUNNING)
    await record(store, "deb", "deb-c", VMState.PENDING)
    await store.register_pools({"deb": {}, "cent": {}, "old": {}})  # "old": published, no longer configured
    await record(store, "old", "old-a", VMState.COMPLETED)

    result = await run("inventory", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    pools = json.loads(result.stdout)["pools"]
    assert list(pools) == ["deb", "cent", "old"]  # configured first, in order, then the others Redis names
    assert pools["deb"]["vms"] == {
        "pending": ["deb-c"],
        "ready": ["deb-a"],
        "running": ["deb-b"],
        "completed": [],
        "failed": [],
        "discovered": [],
        "quarantine": [],
        "suspended": [],
    }
    assert pools["old"] == {
        "configured": False,
        "vms": {**{state: [] for state in pools["old"]["vms"]}, "completed": ["old-a"]},
    }
    assert not any(pools["cent"]["vms"].values())

    plain = (await run("inventory", "-c", str(config))).stdout.splitlines()  # a pipe: one pool and state a line
    assert "deb ready 1 deb-a" in plain and "deb running 1 deb-b" in plain and "cent ready 0" in plain
    assert len(plain) == 3 * len(LIVE_STATES)  # three pools, each of its states


# ---- purge ------------------------------------------------------------------------------------------------


async def test_purge_lists_exactly_the_unknown_vms_then_destroys_exactly_them(
    config: Path, store: Store, inventory_file: Path
) -> None:
    provider = dummy(inventory_file)
    states = {"deb-ready": VMState.READY, "deb-running": VMState.RUNNING, "deb-pending": VMState.PENDING}
    for name, state in (*states.items(), ("cent-done", VMState.COMPLETED)):
        pool = name.split("-")[0]
        await record(store, pool, name, state)
        await provider.create_vm(PoolTarget(pool, f"t/{pool}"), name)
    known = {"cent": ["cent-done"], "deb": sorted(states)}
    unknown = {"deb": ["deb-leak1", "deb-leak2"], "cent": ["cent-leak"]}
    for pool, names in unknown.items():
        for name in names:
            # the provider has them, Redis never heard of them
            await provider.create_vm(PoolTarget(pool, f"t/{pool}"), name)
    everything = {pool: sorted(known[pool] + unknown[pool]) for pool in known}
    assert provider.all_vms() == everything

    dry = await run("purge", "--config", str(config))  # --dry-run is the default
    assert dry.returncode == 1, dry.stderr
    assert sorted(dry.stdout.splitlines()) == ["cent cent-leak", "deb deb-leak1", "deb deb-leak2"]
    assert "3 VM(s) unknown to Redis" in dry.stderr
    assert provider.all_vms() == everything  # a dry run destroys nothing

    done = await run("purge", "--config", str(config), "--no-dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is False
    assert {pool: r["destroyed"] for pool, r in report["pools"].items()} == unknown
    assert provider.all_vms() == known

    again = await run("purge", "--config", str(config), "--json")
    assert again.returncode == 0
    assert all(r["unknown"] == [] for r in json.loads(again.stdout)["pools"].values())


async def test_purge_reports_a_provider_it_cannot_read(tmp_path: Path, redis_port: int, store: Store) -> None:
    broken = tmp_path / "inventory.json"
    broken.write_text("not json")
    config = write_config(tmp_path / "c.yaml", redis_port, broken)
    result = await run("purge", "-c", str(config))
    assert result.returncode == 1
    assert "error: pool deb: inventory failed, nothing judged: dummy inventory" in result.stderr


# ---- migrate-from-ruby ----------------------------------------------------------------------------------


def write_as_the_original(port: int, now: float) -> None:
    """Keys as the Ruby vmpooler 3.x leaves them (reference §4), written with plain Redis commands."""
    r = redis.Redis(port=port, decode_responses=True)
    at = time.strftime(RUBY_TIME, time.gmtime(now - 600))
    r.sadd("vmpooler__pools", "deb", "cent")
    r.hset("vmpooler__pool__deb", mapping={"name": "deb", "template": "t/deb", "size": "2", "alias": "debian"})
    r.hset("vmpooler__pool__cent", mapping={"name": "cent", "template": "t/cent", "size": "1"})
    base = {"template": "deb", "pool": "deb", "domain": "example.com", "clone": at, "clone_time": "12.5"}
    r.sadd("vmpooler__pending__deb", "pending-vm")
    r.hset("vmpooler__vm__pending-vm", mapping=base)
    r.sadd("vmpooler__ready__deb", "ready-vm")
    r.hset("vmpooler__vm__ready-vm", mapping={**base, "ip": "192.0.2.7", "ready": at, "check": at})
    r.sadd("vmpooler__running__deb", "running-vm")
    r.sadd("vmpooler__migrating__deb", "running-vm")  # the original adds every checkout here too
    r.hset("vmpooler__active__deb", "running-vm", at)
    running = {**base, "ready": at, "checkout": at, "token:token": "a" * 32, "token:user": "alice", "lifetime": "2"}
    r.hset("vmpooler__vm__running-vm", mapping={**running, "tag:team": "qa", "snapshot:" + "f" * 32: at})
    r.sadd("vmpooler__completed__cent", "done-vm")
    r.hset("vmpooler__vm__done-vm", mapping={**base, "pool": "cent", "template": "cent"})
    r.hset("vmpooler__token__" + "a" * 32, mapping={"user": "alice", "created": at, "last": at})
    r.set("vmpooler__tasks__clone", 0)
    r.set("vmpooler__tasks__ondemandclone", 0)
    r.hset("vmpooler__lastboot", "deb", at)
    r.hset(f"vmpooler__boot__{time.strftime('%Y-%m-%d', time.gmtime(now))}", "deb:ready-vm", "30.1")
    r.hset(f"vmpooler__tag__{time.strftime('%Y-%m-%d', time.gmtime(now))}", "running-vm:team", "qa")
    r.hset("vmpooler__config__poolsize", "deb", "3")
    r.hset("vmpooler__template__prepared", "deb", "t/deb")
    r.close()


async def test_migrate_from_ruby_reads_the_original_layout(config: Path, store: Store, redis_port: int) -> None:
    write_as_the_original(redis_port, time.time())

    result = await run("migrate-from-ruby", "--config", str(config), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["unknown_keys"] == []
    assert report["pools"]["deb"]["counts"] == {
        "pending": 1,
        "ready": 1,
        "running": 1,
        "completed": 0,
        "failed": 0,
        "discovered": 0,
        "quarantine": 0,
        "suspended": 0,
    }
    assert report["pools"]["cent"]["counts"]["completed"] == 1
    assert report["tokens"]["adopted_on_first_use"] == [hint("a" * 32)]  # never the token itself
    assert set(report["ignored_keys"]) == {
        "vmpooler__tasks__clone",
        "vmpooler__tasks__ondemandclone",
        "vmpooler__migrating__deb",
    }

    plain = await run("migrate-from-ruby", "--config", str(config))
    assert plain.returncode == 0
    assert "pool deb: pending 1, ready 1, running 1, completed 0, failed 0, discovered 0, quarantine 0" in plain.stdout
    assert plain.stdout.splitlines()[-1] == "21 keys read; OK: everything vmpooler needs is readable"

    # what the report promises holds: the Store places the VMs, and the clear token is adopted on first use
    assert await store.locate("running-vm") == ("deb", VMState.RUNNING)
    identity = await TokenService(store.tokens).verify("a" * 32)
    assert identity is not None and identity.user == "alice"
    assert await store.tokens.get(token_id("a" * 32)) is not None


async def test_migrate_from_ruby_lists_each_problem(config: Path, store: Store, redis_port: int) -> None:
    write_as_the_original(redis_port, time.time())
    r = redis.Redis(port=redis_port, decode_responses=True)
    r.hdel("vmpooler__vm__running-vm", "checkout")
    r.hset("vmpooler__vm__ready-vm", "ready", "last tuesday")
    r.sadd("vmpooler__completed__deb", "ready-vm")
    r.hset("vmpooler__token__" + "b" * 32, "created", "2020-01-01 00:00:00 +0000")
    r.set("vmpooler__frobnicator", "1")
    r.sadd("vmpooler__ready__gone", "orphan-vm")
    r.hset("vmpooler__vm__orphan-vm", mapping={"pool": "gone", "ready": "2020-01-01 00:00:00 +0000"})
    r.sadd("vmpooler__pools", "gone")
    r.close()

    result = await run("migrate-from-ruby", "--config", str(config))
    assert result.returncode == 1
    problems = [line.removeprefix("problem: ") for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert problems == [
        "vm ready-vm (ready in deb): 'ready' time 'last tuesday' is unreadable, so ready_ttl never retires the VM",
        "vm running-vm (running in deb): no 'checkout' time, so the VM's lifetime never runs out",
        "vm ready-vm (completed in deb): also ready; a VM must be in one state only",
        "pool gone: holds VMs but is not in the configuration; no manager will tend them",
        f"token {hint('b' * 32)}: the record has no user; it can never be used",
        "key vmpooler__frobnicator: not a key vmpooler reads or writes",
    ]
    assert result.stdout.splitlines()[-1].endswith("; 6 problem(s)")


async def test_every_key_this_service_writes_is_understood(
    tmp_path: Path, store: Store, inventory_file: Path, redis_port: int
) -> None:
    """A Redis our own service filled (manager, API with tokens, tags, tasks, on-demand) reads as clean."""
    config = write_config(
        tmp_path / "c.yaml",
        redis_port,
        inventory_file,
        auth={"provider": "dummy"},
        tagfilter={"url": "(.*)/"},
        config={"check_loop_delay_min": 0.05, "experimental_features": True, "rate_limiting_enabled": True},
    )
    settings = load_settings(config, env={})[0]
    provider = dummy(inventory_file)
    manager = manager_for(settings, store, provider)
    await manager.register_pools()

    async def full() -> bool:
        counts = await store.counts(["deb", "cent"])
        return counts["deb"][VMState.READY] == 2 and counts["cent"][VMState.READY] == 1

    await run_until(manager, full)
    with ApiThread(settings, redis_port) as api, Client(api.url) as anonymous:
        token = anonymous.create_token("alice", "s3cr3t")
        with Client(api.url, token) as client:
            (vm,) = client.checkout({"debian": 1})
            client.modify(vm.hostname, 4, {"url": "https://example.com/job"})
            client.snapshot(vm.hostname)
            client.add_disk(vm.hostname, 8)
            client.request({"cent": 1})
            client.status()
            client.summary()
    await manager.tasks.run_once()
    await run_until(manager, full)
    await manager.history.run_once()
    await settle(manager)

    result = await run("migrate-from-ruby", "--config", str(config), "--json")
    report = json.loads(result.stdout)
    assert report["unknown_keys"] == [] and report["ignored_keys"] == {}, report
    assert result.returncode == 0, report["problems"]
    assert report["keys_read"] > 20


# ---- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["inventory", "purge", "migrate-from-ruby"])
def test_an_unreachable_redis_is_one_line_and_exit_3(tmp_path: Path, inventory_file: Path, command: str) -> None:
    config = write_config(tmp_path / "c.yaml", free_port(), inventory_file)
    result = run_process(command, "--config", str(config))
    assert result.returncode == 3
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: Redis is unreachable") and "is Redis running" in line
    if command == "inventory":
        assert "Traceback" in run_process(command, "--config", str(config), "--debug").stderr


def test_a_bad_config_or_no_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(":pools:\n  - name: a\n    template: t\n    size: lots\n")
    result = run_process("inventory", "--config", str(bad))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: configuration: pools[0].size: must be an integer, got 'lots' "
        "(check the file with `vmpooler validate-config FILE`)"
    ]
    embedded = tmp_path / "embedded.yaml"
    embedded.write_text(":pools:\n  - name: a\n    template: t\n    size: 1\n")
    result = run_process("purge", "--config", str(embedded), cwd=tmp_path)
    assert result.returncode == 2 and "redis.server: not set" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "embedded.yaml"]  # no private Redis started


def test_purge_names_a_bad_provider_option_as_validate_config_does(tmp_path: Path, redis_port: int) -> None:
    config = write_config(tmp_path / "c.yaml", redis_port, tmp_path / "inventory.json")
    document = yaml.safe_load(config.read_text())
    document[":providers:"][":dummy:"]["ready_delay"] = "soon"
    config.write_text(yaml.safe_dump(document))
    purged = run_process("purge", "--config", str(config))
    validated = run_process("validate-config", str(config))
    assert purged.returncode == 2 and validated.returncode == 1
    assert "providers.dummy.ready_delay: must be a number, got 'soon'" in purged.stderr
    assert "providers.dummy.ready_delay: must be a number, got 'soon'" in validated.stdout + validated.stderr
    assert not (tmp_path / "inventory.json").exists()  # nothing was built or written


# ---- the disk verb and shell completion ------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path, redis_port: int, inventory_file: Path) -> Iterator[ApiThread]:
    config = write_config(tmp_path / "auth.yaml", redis_port, inventory_file, auth={"provider": "dummy"})
    with ApiThread(load_settings(config, env={})[0], redis_port) as server:
        yield server


async def test_disk_queues_a_disk_for_the_manager(api: ApiThread, store: Store) -> None:
    await record(store, "deb", "deb-a", VMState.READY)
    with Client(api.url) as client:
        token = client.create_token("alice", "s3cr3t")
    with Client(api.url, token) as client:
        (vm,) = client.checkout({"deb": 1})
    common = ("--url", api.url, "--token", token)

    added = await run("disk", vm.hostname, "8", *common)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "+8gb\n"
    assert await store.tasks.waiting("disk") == {"deb-a:8"}
    as_json = await run("disk", vm.hostname, "16", *common, "--json")
    assert json.loads(as_json.stdout) == {"hostname": vm.hostname, "disk": "+16gb"}

    assert (await run("disk", vm.hostname, "0", *common)).returncode == 2  # usage: at least 1 GB
    unknown = await run("disk", "nosuchvm", "8", *common)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")


def test_shell_completion_is_installable_and_completes_commands() -> None:
    script = run_process("--show-completion", "bash")
    assert script.returncode == 0
    assert "complete -o default -F _vmpooler_completion vmpooler" in script.stdout
    env = {**os.environ, "COMP_WORDS": "vmpooler migr", "COMP_CWORD": "1", "_VMPOOLER_COMPLETE": "complete_bash"}
    done = subprocess.run([VMPOOLER], capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.stdout.split() == ["migrate-from-ruby"]

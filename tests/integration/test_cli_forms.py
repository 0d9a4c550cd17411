"""The `vmpooler` command as existing operators and users call it: client verbs that start without the
server, the original's command lines (`vmpooler`, `vmpooler api manager`), and vmfloaty's config file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.test_cli_client import VMPOOLER, token_for
from tests.integration.test_client import client_settings, fill
from tests.support.processes import wait_until
from tests.support.servers import ApiThread, wait_for_port
from vmpooler.cli.client import config as client_config
from vmpooler.cli.entry import original_forms
from vmpooler.client import core
from vmpooler.store.embedded import free_port
from vmpooler.store.redis import Store

#: what a client verb must not load: the API server, the manager, the providers, Redis
SERVER_MODULES = ("fastapi", "uvicorn", "redis", "vmpooler.api", "vmpooler.manager", "vmpooler.providers",
                  "vmpooler.store", "vmpooler.config")  # fmt: skip


@pytest.fixture
def server(redis_port: int) -> Iterator[ApiThread]:
    with ApiThread(client_settings(), redis_port) as api:
        yield api


def user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: HOME in ``tmp_path`` and none of our variables but ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VMPOOLER_", "REDIS_"))}
    return {**clean, "HOME": str(tmp_path), **extra}


def imported_by(env: dict[str, str], *args: str) -> set[str]:
    """The modules ``vmpooler ARGS`` imports, from ``python -X importtime`` (the command must succeed)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vmpooler", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first line is the header


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


async def test_client_verbs_do_not_import_the_server(server: ApiThread, store: Store, tmp_path: Path) -> None:
    await fill(store, "deb", 1)
    env = user_env(tmp_path, VMPOOLER_URL=server.url)
    help_modules = imported_by(env, "--help")
    assert loaded(help_modules, SERVER_MODULES) == []
    assert loaded(help_modules, ("httpx", "rich", "pydantic")) == []  # nor what only a request needs
    get_modules = imported_by(env, "get", "deb", "--json")
    assert "httpx" in get_modules  # it did run the request
    assert loaded(get_modules, SERVER_MODULES) == []


def test_the_originals_forms_become_ours() -> None:
    config = {"VMPOOLER_CONFIG_FILE": "/etc/vmpooler.yaml"}
    assert original_forms([], config) == ["serve"]
    assert original_forms([], {"VMPOOLER_CONFIG": ":pools: []"}) == ["serve"]
    assert original_forms([], {}) == []  # help
    assert original_forms(["api", "manager"], {}) == ["serve"]
    assert original_forms(["manager", "api", "--port", "5000"], {}) == ["serve", "--port", "5000"]
    assert original_forms(["api", "--port", "5000"], {}) == ["api", "--port", "5000"]
    assert original_forms(["manager"], {}) == ["manager"]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("form", ["bare", "api manager"])
def test_the_originals_command_lines_run_api_and_manager(
    form: str, redis_port: int, tmp_path: Path, inventory_file: Path
) -> None:
    config = tmp_path / "vmpooler.yaml"
    raw = {
        "redis": {"server": "127.0.0.1", "port": redis_port},
        "providers": {"dummy": {"filename": str(inventory_file), "ready_delay": 0.05}},
        "config": {"check_loop_delay_min": 0.05},
        "pools": [{"name": "deb", "template": "t", "size": 2, "provider": "dummy"}],
    }
    config.write_text(yaml.safe_dump(raw))
    port = free_port()
    env = user_env(tmp_path, VMPOOLER_PORT=str(port), VMPOOLER_HOST="127.0.0.1")
    env["VMPOOLER_STATE_DIR"] = str(tmp_path / "state")
    if form == "bare":  # as the original's container: the config through the environment, no arguments
        command = [VMPOOLER]
        env["VMPOOLER_CONFIG_FILE"] = str(config)
    else:
        command = [VMPOOLER, "api", "manager", "-c", str(config)]
    process = start(command, env, tmp_path / "vmpooler.log")
    try:
        wait_for_port(port, process, timeout=30)  # the API
        url = f"http://127.0.0.1:{port}/api/v3/status"
        wait_until(lambda: httpx.get(url).json()["pools"]["deb"]["ready"] == 2, 30, what="the manager fills")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, (tmp_path / "vmpooler.log").read_text()[-2000:]


def test_bare_vmpooler_without_a_config_prints_help(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    done = subprocess.run([VMPOOLER], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert "Usage: vmpooler [OPTIONS] COMMAND" in done.stdout + done.stderr
    assert "serve" in done.stdout + done.stderr


async def test_vmfloaty_config_carries_over(server: ApiThread, store: Store, tmp_path: Path) -> None:
    await fill(store, "deb", 1)
    token = token_for(server)
    elsewhere = f"http://127.0.0.1:{free_port()}"
    floaty = {  # ~/.vmfloaty.yml as vmfloaty users have it: URLs with /api/v1, a non-vmpooler service
        "url": f"{elsewhere}/api/v1",
        "user": "alice",
        "token": token,
        "services": {
            "main": {"url": f"{server.url}/api/v1"},
            "abs": {"url": elsewhere, "type": "abs"},
        },
    }
    (tmp_path / ".vmfloaty.yml").write_text(yaml.safe_dump(floaty, sort_keys=False))
    env = user_env(tmp_path)

    def vmpooler(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([VMPOOLER, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    listed = vmpooler("list")  # vmfloaty's default: the first service, its URL's /api/v1 dropped
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["deb", "cent"]
    assert vmpooler("get", "deb").returncode == 0  # with the file's token: now listed as alice's
    assert vmpooler("list", "--active").stdout.startswith("deb-vm0.")
    refused = vmpooler("list", "--service", "abs")
    assert refused.returncode == 2 and "services.abs.type: 'abs' is not a vmpooler" in refused.stderr
    assert vmpooler("list", "--url", f"{server.url}/api/v3/").returncode == 0

    (tmp_path / ".vmpooler.yaml").write_text(f"url: {elsewhere}\n")  # our own file, when there is one, wins
    assert vmpooler("list").returncode == 3


def test_base_url_with_or_without_the_version() -> None:
    for given in ("https://pooler", "https://pooler/", "https://pooler/api/v1", "https://pooler/api/v3/"):
        assert core.base_url(given) == "https://pooler/api/v3"
    assert client_config.DEFAULT_URL == core.DEFAULT_URL

"""The embedded Redis: private (issue 14.2), started only when nothing names a Redis (15.1), found by the
operator commands, one service per state dir, and out of the way of Ctrl-C (17.10)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.support.servers import wait_for_port
from tests.support.waiting import until_sync
from vmpooler.config import parse_settings
from vmpooler.store.embedded import (
    EmbeddedRedis,
    _bundled_binary,
    free_port,
    redis_server_binary,
    server_major_version,
)

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
EXAMPLE = Path(__file__).parents[2] / "examples" / "vmpooler.yaml"


class Serve:
    """`vmpooler serve` as `make run` starts it, in a process group of its own as a terminal would (so a
    Ctrl-C can be sent to the whole group)."""

    def __init__(self, workdir: Path, config: Path, state_dir: Path) -> None:
        self.port = free_port()
        self.log = workdir / f"serve-{self.port}.log"
        command = [VMPOOLER, "serve", "-c", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--state-dir", str(state_dir)],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path, EXAMPLE, tmp_path / ".vmpooler")
    wait_for_port(server.port, server.process, timeout=30)
    yield server
    server.stop()


def redis_server_pids_in(directory: Path) -> list[int]:
    """redis-server processes whose working directory (their data dir) is ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if b"redis-server" in (proc / "cmdline").read_bytes() and os.readlink(proc / "cwd") == str(directory):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def test_the_example_runs_a_private_redis_that_operator_commands_find(serve: Serve, tmp_path: Path) -> None:
    state, data = tmp_path / ".vmpooler", tmp_path / ".vmpooler" / "redis"
    assert state.stat().st_mode & 0o777 == 0o700 and data.stat().st_mode & 0o777 == 0o700
    (pid,) = redis_server_pids_in(data)
    time.sleep(1.5)  # the AOF is written every second
    for path in data.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    conf = (data / "redis.conf").read_text()
    password = next(line.split()[1] for line in conf.splitlines() if line.startswith("requirepass "))
    port = int(next(line.split()[1] for line in conf.splitlines() if line.startswith("port ")))
    assert len(password) >= 32 and password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()

    stranger = redis.Redis(port=port, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        stranger.keys("*")
    stranger.close()
    assert "using Redis at 127.0.0.1" in serve.text() and "no :redis: section and no REDIS_SERVER" in serve.text()
    owner = redis.Redis(port=port, password=password, socket_timeout=5)
    assert owner.sismember("vmpooler__pools", "debian-12-x86_64")
    owner.close()

    # the operator commands find it (and its password) through the state dir
    inventory = subprocess.run(
        [VMPOOLER, "inventory", "-c", str(EXAMPLE), "--state-dir", str(state), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert inventory.returncode == 0, inventory.stderr
    assert "debian-12-x86_64" in inventory.stdout


def test_one_service_per_state_dir_and_ctrl_c_stops_redis_last(serve: Serve, tmp_path: Path) -> None:
    started = time.monotonic()
    second = Serve(tmp_path, EXAMPLE, tmp_path / ".vmpooler")
    # it stops before starting anything: within its own start-up time (seconds on a loaded machine)
    assert second.process.wait(30) != 0 and time.monotonic() - started < 25
    refusal = "".join(second.text().split())  # the console wraps long lines, even inside a path
    expected = f"state dir {tmp_path / '.vmpooler'} is in use by another vmpooler (pid {serve.process.pid})"
    assert "".join(expected.split()) in refusal
    (redis_pid,) = redis_server_pids_in(tmp_path / ".vmpooler" / "redis")
    assert httpx.get(f"http://127.0.0.1:{serve.port}/api/v3/status", timeout=10).status_code == 200

    # Ctrl-C in the terminal of `make run` (SIGINT to its process group), while clones are under way
    assert os.getpgid(redis_pid) != os.getpgid(serve.process.pid)
    before = len(serve.text().splitlines())
    os.killpg(serve.process.pid, signal.SIGINT)

    assert serve.process.wait(30) == 0
    shutdown = serve.text().splitlines()[before:]
    noise = [line for line in shutdown if any(word in line for word in ("Traceback", "unavailable", "unreachable"))]
    assert noise == [], "\n".join(shutdown)
    assert not Path(f"/proc/{redis_pid}").exists()


def test_only_a_missing_redis_section_means_the_embedded_one() -> None:
    def redis_of(raw: dict[str, object], env: dict[str, str] | None = None) -> tuple[bool, str | None, int]:
        cfg = parse_settings(raw, env=env or {})[0].redis
        return cfg.embedded, cfg.server, cfg.port

    assert redis_of({}) == (True, None, 6379)
    assert redis_of({":redis:": {"port": 6380}}) == (False, "localhost", 6380)
    assert redis_of({":redis:": {"data_ttl": 24}}) == (False, "localhost", 6379)
    assert redis_of({}, {"REDIS_SERVER": "r1"}) == (False, "r1", 6379)
    assert redis_of({}, {"REDIS_PORT": "6381"}) == (False, "localhost", 6381)
    described = parse_settings({":redis:": {"port": 6380}}, env={})[0].redis.describe()
    assert described == "Redis at localhost:6380 (:redis: names no server: the original's default, localhost)"


def test_a_redis_section_without_server_is_the_operators_redis(redis_port: int, tmp_path: Path) -> None:
    config = tmp_path / "vmpooler.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(EXAMPLE.read_text()), ":redis:": {"port": redis_port}}))
    server = Serve(tmp_path, config, tmp_path / ".vmpooler")
    using = f"using Redis at localhost:{redis_port} (:redis: names no server"
    try:
        wait_for_port(server.port, server.process, timeout=30)
        # the API listens before the log is flushed and before the manager registers the pools
        until_sync(server.text, "the log line naming the Redis", timeout=30, done=lambda text: using in text)
        assert not (tmp_path / ".vmpooler" / "redis").exists()
        client = redis.Redis(port=redis_port)
        # the API listens before the manager (a process of its own) has registered the pools
        until_sync(lambda: client.sismember("vmpooler__pools", "debian-12-x86_64"), "the pools registered", timeout=30)
        client.close()
    finally:
        server.stop()


def test_the_system_redis_is_preferred_and_the_bundled_one_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert server_major_version(redis_server_binary()) >= 7
    bundled = _bundled_binary()
    assert bundled is not None and server_major_version(bundled) == 6
    caplog.set_level(logging.WARNING, logger="vmpooler.store")
    for name in ("one", "two"):
        embedded = EmbeddedRedis(tmp_path / name / "redis", binary=bundled)
        embedded.start()
        embedded.stop()
    warnings = [r.getMessage() for r in caplog.records if "end of life" in r.getMessage()]
    assert len(warnings) == 1 and "install redis-server 7 or later" in warnings[0]

"""Rolling over from the original (Ruby) vmpooler and back keeps its tokens working (issue 15.3), proven
against a Redis the original itself wrote: its token and checkout work here, and afterwards the original
still accepts the token, until `vmpooler migrate-from-ruby --finalize`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.servers import ApiThread
from vmpooler.config import parse_settings
from vmpooler.store.embedded import free_port

ORIGINAL = Path(os.environ.get("VMPOOLER_ORIGINAL", Path(__file__).parents[3] / "shared" / "upstream"))
VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
ALICE = ("alice", "s3cr3t")  # the dummy auth of both accepts any password other than the user name
POOLS = [{"name": "conf-a", "template": "Templates/conf-a", "size": 2}]


#: side by side with the original: a slow test, with the compat suite
pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def run_sh() -> Path:
    script = ORIGINAL / "run.sh"
    if not script.exists():
        pytest.skip(f"the original vmpooler is not at {ORIGINAL} (set VMPOOLER_ORIGINAL)")  # a failure under CI
    return script


class Original:
    """The original 3.9.1 on the test Redis, started and stopped with its run.sh."""

    def __init__(self, run_sh: Path, redis_port: int, workdir: Path) -> None:
        self.run_sh, self.redis_port, self.state = run_sh, redis_port, workdir / "original"
        self.config = workdir / "original.yaml"
        sample = yaml.safe_load((run_sh.parent / "sample.yaml").read_text())
        self.config.write_text(yaml.safe_dump({**sample, ":pools": [{**sample[":pools"][0], "size": 2}]}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v3"

    def start(self, mode: str, *wait: str) -> None:
        command = [str(self.run_sh), "start", "--port", str(self.port), "--redis-port", str(self.redis_port)]
        command += ["--config", str(self.config), "--state-dir", str(self.state), "--mode", mode, *wait]
        subprocess.run(command, check=True, capture_output=True, timeout=240)

    def stop(self) -> None:
        command = [str(self.run_sh), "stop", "--state-dir", str(self.state)]
        subprocess.run(command, check=False, capture_output=True, timeout=60)


@pytest.fixture
def original(run_sh: Path, redis_port: int, tmp_path: Path) -> Iterator[Original]:
    server = Original(run_sh, redis_port, tmp_path)
    yield server
    server.stop()


def test_the_originals_tokens_survive_a_rollover_and_a_rollback(
    original: Original, redis_port: int, tmp_path: Path
) -> None:
    original.start("full", "--wait-full", "120")
    with httpx.Client(timeout=30) as http:
        token = http.post(f"{original.url}/token", auth=ALICE).json()["token"]
        theirs = http.post(f"{original.url}/vm/conf-a", headers={"X-AUTH-TOKEN": token}).json()
        held = theirs["conf-a"]["hostname"].split(".")[0]
    original.stop()

    # ours on the Redis the original wrote: the token works, and finds what the original checked out
    raw = {"pools": POOLS, "auth": {"provider": "dummy"}, "redis": {"server": "127.0.0.1", "port": redis_port}}
    with ApiThread(parse_settings(raw, env={})[0], redis_port) as ours, httpx.Client(base_url=ours.url) as http:
        info = http.get(f"/api/v3/token/{token}").json()[token]
        assert info["user"] == "alice" and held in info["vms"]["running"]
        assert http.put(f"/api/v3/vm/{held}", json={"lifetime": 5}, headers={"X-AUTH-TOKEN": token}).status_code == 200

    # rolled back: the original still accepts the token and lists what it checked out with it
    original.start("api")
    with httpx.Client(timeout=30) as http:
        info = http.get(f"{original.url}/token/{token}").json()[token]
        assert info["user"] == "alice" and held in info["vms"]["running"]
        headers = {"X-AUTH-TOKEN": token}
        assert http.put(f"{original.url}/vm/{held}", json={"lifetime": 6}, headers=headers).status_code == 200
    original.stop()

    # finalized: only ours accepts it, and still finds the VM
    config = tmp_path / "ours.yaml"
    config.write_text(yaml.safe_dump({":redis:": {"server": "127.0.0.1", "port": redis_port}}))
    command = [VMPOOLER, "migrate-from-ruby", "--finalize", "-c", str(config)]
    assert subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0
    with ApiThread(parse_settings(raw, env={})[0], redis_port) as ours, httpx.Client(base_url=ours.url) as http:
        assert held in http.get(f"/api/v3/token/{token}").json()[token]["vms"]["running"]

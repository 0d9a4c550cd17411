"""`vmpooler api` as users run it, with LDAP auth: oversize heads get a 431, and the log holds no secret."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.servers import wait_for_port
from tests.support.slapd import ADMIN_GROUP, USERS, Slapd, running_slapd, slapd_missing
from vmpooler.store.embedded import free_port

VMPOOLER = str(Path(sys.executable).parent / "vmpooler")
ALICE = USERS["alice"]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    with running_slapd(tmp_path_factory.mktemp("slapd-serve")) as server:
        yield server


class ApiProcess:
    """`vmpooler api` on a free port; its stderr (the log, as JSON lines) goes to ``log_path``."""

    def __init__(self, workdir: Path, redis_port: int, slapd: Slapd) -> None:
        config = {
            ":config:": {"log_format": "json", "request_logger": True},
            ":redis:": {"server": "127.0.0.1", "port": redis_port},
            ":pools:": [{"name": "deb", "template": "t/deb", "size": 1}],
            ":auth:": {"provider": "ldap", ":ldap:": slapd.ldap_config(admin_group=ADMIN_GROUP)},
        }
        (workdir / "vmpooler.yaml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "api.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    VMPOOLER,
                    "api",
                    "-c",
                    str(workdir / "vmpooler.yaml"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        wait_for_port(self.port, self.process, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()


@pytest.fixture
def api(tmp_path: Path, redis_port: int, slapd: Slapd) -> Iterator[ApiProcess]:
    server = ApiProcess(tmp_path, redis_port, slapd)  # redis_port: flushed, so the pool starts empty
    try:
        yield server
    finally:
        server.stop()


def raw_request(port: int, head: bytes, timeout: float = 10.0) -> bytes:
    """Sends ``head`` (a request without a body) on a fresh connection; the reply's first line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything we send
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


def status_of(first_line: bytes) -> int:
    assert first_line.startswith(b"HTTP/1.1 "), first_line
    return int(first_line.split()[1])


@pytest.mark.parametrize(
    "head",
    [
        b"GET /api/v3/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /api/v3/status HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n",
        b"GET /api/v3/status HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(1000))
        + b"\r\n",
    ],
    ids=["one-100KB-header", "1000-headers", "1000-1KB-headers"],
)
def test_oversize_headers_get_a_4xx_and_the_server_keeps_serving(api: ApiProcess, head: bytes) -> None:
    started = time.monotonic()
    assert status_of(raw_request(api.port, head)) == 431
    assert time.monotonic() - started < 5
    assert httpx.get(f"{api.url}/api/v3/status", timeout=10).status_code == 200
    assert api.process.poll() is None


def test_a_large_but_reasonable_request_passes(api: ApiProcess) -> None:
    headers = {f"X-Header-{i}": "v" * 250 for i in range(90)}  # about 24 KB of head
    assert httpx.get(f"{api.url}/api/v3/status", headers=headers, timeout=10).status_code == 200
    body = b'{"deb": 1, "pad": "' + b"x" * 60_000 + b'"}'  # head and body may arrive in one read
    reply = httpx.post(f"{api.url}/api/v3/vm", content=body, headers=headers, timeout=10)
    assert reply.status_code == 400 and "pad" in reply.json()["error"]  # the app read and judged the body
    with httpx.Client(base_url=api.url, timeout=10) as client:  # one kept-alive connection
        for _ in range(5):
            assert client.get("/api/v3/status", headers=headers).status_code == 200


def test_the_log_holds_no_password_token_or_authorization_header(api: ApiProcess) -> None:
    good, bad = (ALICE.name, ALICE.password), (ALICE.name, "Wr0ng-passw0rd-guess")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        token = client.post("/api/v3/token", auth=good).json()["token"]
        assert client.get(f"/api/v3/token/{token}").status_code == 200
        assert client.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token}).status_code == 503  # pool is empty
        assert client.get("/api/v3/token", auth=good).status_code == 200
        assert client.post("/api/v3/token", auth=bad).status_code == 401
        assert client.delete(f"/api/v3/token/{token}", auth=good).status_code == 200
        assert client.post("/api/v3/vm/deb", headers={"X-AUTH-TOKEN": token}).status_code == 401
    secrets = {
        "password": ALICE.password,
        "wrong password": bad[1],
        "token": token,
        "good Authorization": base64.b64encode(f"{ALICE.name}:{ALICE.password}".encode()).decode(),
        "bad Authorization": base64.b64encode(f"{bad[0]}:{bad[1]}".encode()).decode(),
    }
    deadline = time.monotonic() + 5  # the log is written by a background thread
    requests: list[str] = []
    while len(requests) < 7 and time.monotonic() < deadline:
        time.sleep(0.1)
        entries = [json.loads(line) for line in api.log_lines() if line.startswith("{")]
        requests = [e["message"] for e in entries if e["logger"] == "vmpooler.api.requests"]
    assert len(requests) == 7, requests  # the request log is on: every call above was logged
    text = "\n".join(api.log_lines())
    for what, secret in secrets.items():
        assert secret not in text, f"the {what} appears in the log"
